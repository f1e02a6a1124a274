"""Transaction benchmark (`make bench-transaction`): the service against raw asyncpg on the same database.

Each transaction Bundle holds one new Patient (`urn:uuid:` fullUrl) and 100 QuestionnaireResponses whose
subject refers to it, all validated against one Questionnaire; the service resolves the placeholder,
validates every response, checks the references and writes resources, history and search indexes in one
database transaction. The baseline inserts the same 101 JSON documents with raw asyncpg, in one
transaction, into a table with one `jsonb` column, on the same PostgreSQL in the same run.

The figure is resources persisted per second, the median of `--rounds` rounds, at one client and at
eight clients (each client sends its transactions one after another).

Usage: `python -m benchmarks.transaction [--responses 100] [--rounds 5] [--per-client 5]`
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
from sqlalchemy import make_url

from service.storage.db import start_embedded_postgres, upgrade_to_head

DATABASE = "ipt_fhir_bench_transaction"
QUESTIONNAIRE_URL = "http://example.org/bench/Questionnaire/weekly-mood"
QUESTIONNAIRE = {
    "resourceType": "Questionnaire",
    "id": "weekly-mood",
    "url": QUESTIONNAIRE_URL,
    "version": "1.0.0",
    "status": "active",
    "subjectType": ["Patient"],
    "item": [
        {"linkId": "mood", "type": "integer", "text": "Mood this week (0-10)", "required": True},
        {"linkId": "note", "type": "string", "text": "What helped?"},
    ],
}


def _authored(week: int) -> str:
    """A different moment for every response, as a patient's weekly worksheets have."""
    moment = datetime(2023, 1, 2, 9, 0, tzinfo=UTC) + timedelta(weeks=week, minutes=random.randrange(600))
    return moment.isoformat().replace("+00:00", "Z")


def transaction(responses: int) -> dict[str, Any]:
    patient_url = f"urn:uuid:{uuid.uuid4()}"
    entries: list[dict[str, Any]] = [
        {
            "fullUrl": patient_url,
            "resource": {"resourceType": "Patient", "name": [{"family": "Rivera", "given": ["Sam"]}]},
            "request": {"method": "POST", "url": "Patient"},
        }
    ]
    for week in range(responses):
        entries.append(
            {
                "fullUrl": f"urn:uuid:{uuid.uuid4()}",
                "resource": {
                    "resourceType": "QuestionnaireResponse",
                    "questionnaire": f"{QUESTIONNAIRE_URL}|1.0.0",
                    "status": "completed",
                    "subject": {"reference": patient_url},
                    "authored": _authored(week),
                    "item": [
                        {"linkId": "mood", "answer": [{"valueInteger": week % 11}]},
                        {"linkId": "note", "answer": [{"valueString": f"Week {week}: called a friend"}]},
                    ],
                },
                "request": {"method": "POST", "url": "QuestionnaireResponse"},
            }
        )
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


# --- the service and the database ------------------------------------------------------------------


def _dsn(url: str, database: str | None = None) -> str:
    parsed = make_url(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def start_service(database_url: str, workers: int) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    environment = {**os.environ, "DATABASE_URL": database_url, "IPT_FHIR_LOAD_CONTENT_ON_START": "false"}
    # The command is this interpreter and fixed arguments.
    command = [sys.executable, "-m", "uvicorn", "service.app:create_app", "--factory", "--port", str(port)]
    command += ["--log-level", "warning", "--no-access-log", "--workers", str(workers)]
    process = subprocess.Popen(command, env=environment)  # noqa: S603
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return process, base
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.kill()
    raise RuntimeError("the service did not start")


def _auth_headers() -> dict[str, str]:
    """A development token when the service requires one."""
    try:
        security = importlib.import_module("service.api.security")
        from service.config import get_settings

        token = security.mint_token(get_settings(), scope="system/*.cruds", patient=None, subject="bench")
    except (ImportError, AttributeError, TypeError):
        return {}
    return {"Authorization": f"Bearer {token}"}


# --- timing ----------------------------------------------------------------------------------------


async def rate(send: Callable[[], Awaitable[int]], *, clients: int, per_client: int) -> float:
    """Resources persisted per second with `clients` concurrent senders of `per_client` transactions."""

    async def client() -> int:
        return sum([await send() for _ in range(per_client)])

    started = time.perf_counter()
    persisted = sum(await asyncio.gather(*(client() for _ in range(clients))))
    return persisted / (time.perf_counter() - started)


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--responses", type=int, default=100, help="QuestionnaireResponses per transaction")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per figure; the median is reported")
    parser.add_argument("--per-client", type=int, default=5, help="transactions per client and round")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes of the service")
    options = parser.parse_args()

    data_dir = Path(os.environ.get("DATA_DIR", ".data"))
    server = start_embedded_postgres(data_dir / "bench", database="postgres")
    admin = await asyncpg.connect(_dsn(server))
    await admin.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
    await admin.execute(f'CREATE DATABASE "{DATABASE}"')
    version = await admin.fetchval("SHOW server_version")
    await admin.close()
    database_url = make_url(server).set(database=DATABASE).render_as_string(hide_password=False)
    await asyncio.to_thread(upgrade_to_head, database_url)
    process, base = start_service(database_url, options.workers)
    try:
        await run(options, database_url, base, str(version))
    finally:
        process.terminate()
        process.wait(timeout=30)


async def run(options: argparse.Namespace, database_url: str, base: str, version: str) -> None:
    headers = {"Content-Type": "application/fhir+json", "Prefer": "return=minimal", **_auth_headers()}
    size = options.responses + 1
    pool = await asyncpg.create_pool(_dsn(database_url), min_size=8, max_size=8)
    await pool.execute("CREATE TABLE IF NOT EXISTS bench_raw (id text PRIMARY KEY, content jsonb NOT NULL)")
    limits = httpx.Limits(max_connections=16)
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=120, limits=limits) as http:
        stored = await http.put(
            f"/fhir/Questionnaire/{QUESTIONNAIRE['id']}", content=orjson.dumps(QUESTIONNAIRE)
        )
        stored.raise_for_status()

        async def service() -> int:
            response = await http.post("/fhir", content=orjson.dumps(transaction(options.responses)))
            if response.status_code != 200:
                raise RuntimeError(f"transaction failed: {response.status_code} {response.text[:500]}")
            return size

        async def raw() -> int:
            documents = [
                (str(uuid.uuid4()), orjson.dumps(e["resource"]).decode())
                for e in transaction(options.responses)["entry"]
            ]
            async with pool.acquire() as connection, connection.transaction():
                await connection.executemany(
                    "INSERT INTO bench_raw (id, content) VALUES ($1, $2::jsonb)", documents
                )
            return size

        await service()
        await raw()
        print(
            f"PostgreSQL {version}; {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, ",
            end="",
        )
        print(
            f"Python {platform.python_version()}; {options.workers} worker(s); {size} resources per Bundle, "
            f"median of {options.rounds}"
        )
        print(f"{'clients':>8} {'service res/s':>14} {'raw res/s':>10} {'ratio':>7}")
        for clients in (1, 8):
            service_rates, raw_rates = [], []
            for _ in range(options.rounds):
                service_rates.append(await rate(service, clients=clients, per_client=options.per_client))
                raw_rates.append(await rate(raw, clients=clients, per_client=options.per_client))
            ours, theirs = statistics.median(service_rates), statistics.median(raw_rates)
            print(f"{clients:>8} {ours:>14,.0f} {theirs:>10,.0f} {ours / theirs:>7.1%}")
    await pool.close()


if __name__ == "__main__":
    asyncio.run(main())
