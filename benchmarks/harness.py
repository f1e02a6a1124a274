"""What both benchmarks share: a fresh database on the embedded PostgreSQL, the service in processes of its
own, and a token for it."""

from __future__ import annotations

import asyncio
import importlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import httpx
from sqlalchemy import make_url

from service.storage.db import start_embedded_postgres, upgrade_to_head


def dsn(url: str, database: str | None = None) -> str:
    """The libpq form of a SQLAlchemy URL, for asyncpg."""
    parsed = make_url(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


async def fresh_database(name: str) -> tuple[str, str]:
    """Create (or re-create) database `name` on the embedded PostgreSQL under `DATA_DIR/bench`, migrated to
    head; returns its SQLAlchemy URL and the server's version."""
    server = start_embedded_postgres(Path(os.environ.get("DATA_DIR", ".data")) / "bench", database="postgres")
    admin = await asyncpg.connect(dsn(server))
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.execute(f'CREATE DATABASE "{name}"')
    version = str(await admin.fetchval("SHOW server_version"))
    await admin.close()
    database_url = make_url(server).set(database=name).render_as_string(hide_password=False)
    # Alembic's env runs its own event loop.
    await asyncio.to_thread(upgrade_to_head, database_url)
    return database_url, version


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _start(database_url: str) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    environment = {**os.environ, "DATABASE_URL": database_url, "IPT_FHIR_LOAD_CONTENT_ON_START": "false"}
    # The command is this interpreter and fixed arguments.
    command = [sys.executable, "-m", "uvicorn", "service.app:create_app", "--factory", "--port", str(port)]
    # Keep-alive past the default 5 s: a benchmark's client may sit idle while the raw baseline runs.
    command += ["--log-level", "warning", "--no-access-log", "--timeout-keep-alive", "60"]
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


@asynccontextmanager
async def services(database_url: str, count: int = 1) -> AsyncIterator[list[str]]:
    """`count` service processes on the database, each on a port of its own; yields their base URLs.

    Separate processes rather than uvicorn's `--workers`: those share one listening socket, and which of
    them accepts a connection is chance (a burst of new connections often all goes to one), so the load
    would not be split evenly. With a port each, a client spreads its connections as a load balancer in
    front of the processes would.
    """
    started: list[tuple[subprocess.Popen[bytes], str]] = []
    try:
        for _ in range(count):
            started.append(await asyncio.to_thread(_start, database_url))
        yield [base for _, base in started]
    finally:
        for process, _ in started:
            process.terminate()
        for process, _ in started:
            process.wait(timeout=30)


def auth_headers(expires_in: int = 7200) -> dict[str, str]:
    """A `system/*.cruds` development token, minted as `ipt-fhir token` does."""
    security = importlib.import_module("service.api.security")
    from service.config import get_settings

    token = security.mint_token(
        get_settings(), scope="system/*.cruds", subject="bench", expires_in=expires_in
    )
    return {"Authorization": f"Bearer {token}"}
