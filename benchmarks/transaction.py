"""Transaction benchmark (`make bench-transaction`): the service against raw asyncpg on the same database.

Each transaction Bundle holds one new Patient (`urn:uuid:` fullUrl) and 100 QuestionnaireResponses whose
subject refers to it, all validated against one Questionnaire; the service resolves the placeholder,
validates every response, checks the references and writes resources, history and search indexes in one
database transaction. The baseline inserts the same 101 JSON documents with raw asyncpg, in one
transaction, into a table with one `jsonb` column, on the same PostgreSQL in the same run.

The figure is resources persisted per second, the median of `--rounds` rounds, at one client and at
eight clients (each client sends its transactions one after another). The service runs as `--processes`
processes (one per CPU by default), each on a port of its own; client n sends to process n mod N.

With `--form phq-9` the responses answer the IPT PHQ-9 instead (nine coded answers each, validated against
its answer options), and each also yields its total-score Observation, written in the same transaction but
not counted.

Usage: `python -m benchmarks.transaction [--form weekly-mood|phq-9] [--responses 100] [--rounds 5]
[--per-client 10] [--processes N]`
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import orjson

from benchmarks.harness import auth_headers, dsn, fresh_database, services
from mappings.content import load_content

DATABASE = "ipt_fhir_bench_transaction"
WEEKLY_MOOD = {
    "resourceType": "Questionnaire",
    "id": "weekly-mood",
    "url": "http://example.org/bench/Questionnaire/weekly-mood",
    "version": "1.0.0",
    "status": "active",
    "subjectType": ["Patient"],
    "item": [
        {"linkId": "mood", "type": "integer", "text": "Mood this week (0-10)", "required": True},
        {"linkId": "note", "type": "string", "text": "What helped?"},
    ],
}


def _weekly_mood_items(week: int) -> list[dict[str, Any]]:
    return [
        {"linkId": "mood", "answer": [{"valueInteger": week % 11}]},
        {"linkId": "note", "answer": [{"valueString": f"Week {week}: called a friend"}]},
    ]


def _phq9() -> Form:
    questionnaire: dict[str, Any] = next(
        r for r in load_content() if r["resourceType"] == "Questionnaire" and r["id"] == "phq-9"
    )
    questions = [
        item for item in questionnaire["item"] if item["linkId"] in {f"phq9-{n}" for n in range(1, 10)}
    ]

    def items(week: int) -> list[dict[str, Any]]:
        return [
            {"linkId": item["linkId"], "answer": [item["answerOption"][(week + n) % 4]]}
            for n, item in enumerate(questions)
        ]

    return Form(questionnaire, items)


@dataclass(frozen=True)
class Form:
    """The Questionnaire the responses answer, and the answers of the response of a given week."""

    questionnaire: dict[str, Any]
    items: Callable[[int], list[dict[str, Any]]]

    @property
    def canonical(self) -> str:
        return f"{self.questionnaire['url']}|{self.questionnaire['version']}"


FORMS: dict[str, Callable[[], Form]] = {
    "weekly-mood": lambda: Form(WEEKLY_MOOD, _weekly_mood_items),
    # Nine coded answers each, and every completed response also yields its total-score Observation.
    "phq-9": _phq9,
}


def _authored(week: int) -> str:
    """A different moment for every response, as a patient's weekly worksheets have."""
    moment = datetime(2023, 1, 2, 9, 0, tzinfo=UTC) + timedelta(weeks=week, minutes=random.randrange(600))
    return moment.isoformat().replace("+00:00", "Z")


def transaction(responses: int, form: Form) -> dict[str, Any]:
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
                    "questionnaire": form.canonical,
                    "status": "completed",
                    "subject": {"reference": patient_url},
                    "authored": _authored(week),
                    "item": form.items(week),
                },
                "request": {"method": "POST", "url": "QuestionnaireResponse"},
            }
        )
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


# --- timing ----------------------------------------------------------------------------------------


async def rate(send: Callable[[int], Awaitable[int]], *, clients: int, per_client: int) -> float:
    """Resources persisted per second with `clients` concurrent senders of `per_client` transactions;
    `send` gets the number of the client it sends for."""

    async def client(number: int) -> int:
        return sum([await send(number) for _ in range(per_client)])

    started = time.perf_counter()
    persisted = sum(await asyncio.gather(*(client(number) for number in range(clients))))
    return persisted / (time.perf_counter() - started)


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--responses", type=int, default=100, help="QuestionnaireResponses per transaction")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per figure; the median is reported")
    parser.add_argument("--per-client", type=int, default=10, help="transactions per client and round")
    parser.add_argument(
        "--form", choices=sorted(FORMS), default="weekly-mood", help="the Questionnaire answered"
    )
    parser.add_argument(
        "--processes", type=int, default=os.cpu_count() or 1, help="service processes (default: one per CPU)"
    )
    options = parser.parse_args()
    database_url, version = await fresh_database(DATABASE)
    async with services(database_url, options.processes) as bases:
        await run(options, database_url, bases, version)


async def run(options: argparse.Namespace, database_url: str, bases: list[str], version: str) -> None:
    headers = {"Content-Type": "application/fhir+json", "Prefer": "return=minimal", **auth_headers()}
    size: int = options.responses + 1
    form = FORMS[options.form]()
    pool = await asyncpg.create_pool(dsn(database_url), min_size=8, max_size=8)
    await pool.execute("CREATE TABLE IF NOT EXISTS bench_raw (id text PRIMARY KEY, content jsonb NOT NULL)")
    # Client n talks to process n mod N, over a connection of its own.
    https = [
        httpx.AsyncClient(base_url=bases[n % len(bases)], headers=headers, timeout=120) for n in range(8)
    ]

    async def service(number: int) -> int:
        body = orjson.dumps(transaction(options.responses, form))
        response = await https[number].post("/fhir", content=body)
        if response.status_code != 200:
            raise RuntimeError(f"transaction failed: {response.status_code} {response.text[:500]}")
        return size

    async def raw(number: int) -> int:
        documents = [
            (str(uuid.uuid4()), orjson.dumps(e["resource"]).decode())
            for e in transaction(options.responses, form)["entry"]
        ]
        async with pool.acquire() as connection, connection.transaction():
            await connection.executemany(
                "INSERT INTO bench_raw (id, content) VALUES ($1, $2::jsonb)", documents
            )
        return size

    questionnaire = form.questionnaire
    stored = await https[0].put(
        f"/fhir/Questionnaire/{questionnaire['id']}", content=orjson.dumps(questionnaire)
    )
    stored.raise_for_status()
    for number in range(len(https)):
        await service(number)
    await raw(0)
    print(
        f"PostgreSQL {version}; {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, ", end=""
    )
    print(
        f"Python {platform.python_version()}; {len(bases)} service process(es); {size} resources per Bundle "
        f"({options.form}), median of {options.rounds}"
    )
    print(f"{'clients':>8} {'service res/s':>14} {'(rounds)':>16} {'raw res/s':>10} {'ratio':>7}")
    for clients in (1, 8):
        service_rates, raw_rates = [], []
        for _ in range(options.rounds):
            service_rates.append(await rate(service, clients=clients, per_client=options.per_client))
            raw_rates.append(await rate(raw, clients=clients, per_client=options.per_client))
        ours, theirs = statistics.median(service_rates), statistics.median(raw_rates)
        spread = f"{min(service_rates):,.0f}-{max(service_rates):,.0f}"
        print(f"{clients:>8} {ours:>14,.0f} {spread:>16} {theirs:>10,.0f} {ours / theirs:>7.1%}")
    for http in https:
        await http.aclose()
    await pool.close()


if __name__ == "__main__":
    asyncio.run(main())
