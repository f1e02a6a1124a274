"""What the benchmarks share: a fresh database on the embedded PostgreSQL, the service (or another ASGI app)
in processes of its own, and a token for the service."""

from __future__ import annotations

import asyncio
import importlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
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


SERVICE_APP = "service.app:create_app"


def bench_data_dir() -> Path:
    """Where the benchmarks' embedded PostgreSQL keeps its data: `DATA_DIR/bench`."""
    return Path(os.environ.get("DATA_DIR", ".data")) / "bench"


def postmaster_pid() -> int:
    """The process id of the benchmarks' embedded PostgreSQL server (started by `fresh_database`)."""
    lines = (bench_data_dir() / "postgres" / "postmaster.pid").resolve().read_text().splitlines()
    return int(lines[0])


async def fresh_database(name: str, *, migrate: bool = True) -> tuple[str, str]:
    """Create (or re-create) database `name` on the embedded PostgreSQL under `DATA_DIR/bench`, migrated to
    head unless `migrate` is false (an empty database); returns its SQLAlchemy URL and the server's
    version."""
    server = start_embedded_postgres(bench_data_dir(), database="postgres")
    admin = await asyncpg.connect(dsn(server))
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.execute(f'CREATE DATABASE "{name}"')
    version = str(await admin.fetchval("SHOW server_version"))
    await admin.close()
    database_url = make_url(server).set(database=name).render_as_string(hide_password=False)
    if migrate:
        # Alembic's env runs its own event loop.
        await asyncio.to_thread(upgrade_to_head, database_url)
    return database_url, version


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass(frozen=True)
class Server:
    """A server process started by `servers`: its process id and base URL."""

    process: subprocess.Popen[bytes]
    base: str

    @property
    def pid(self) -> int:
        return self.process.pid


def _start(
    database_url: str, *, app: str, environment: Mapping[str, str], workers: int, start_timeout: float
) -> Server:
    port = _free_port()
    variables = {
        **os.environ,
        "DATABASE_URL": database_url,
        "IPT_FHIR_LOAD_CONTENT_ON_START": "false",
        **environment,
    }
    # The command is this interpreter and fixed arguments.
    command = [sys.executable, "-m", "uvicorn", app, "--factory", "--port", str(port)]
    # Keep-alive past the default 5 s: a benchmark's client may sit idle while the raw baseline runs.
    command += ["--log-level", "warning", "--no-access-log", "--timeout-keep-alive", "60"]
    if workers > 1:
        command += ["--workers", str(workers)]
    process = subprocess.Popen(command, env=variables)  # noqa: S603
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + start_timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{app} exited with {process.returncode} while starting")
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return Server(process, base)
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"{app} did not start")


@asynccontextmanager
async def servers(
    database_url: str,
    count: int = 1,
    *,
    app: str = SERVICE_APP,
    environment: Mapping[str, str] | None = None,
    workers: int = 1,
    start_timeout: float = 60,
) -> AsyncIterator[list[Server]]:
    """`count` uvicorn processes serving the ASGI factory `app` on the database, each on a port of its own
    and each with `workers` worker processes (one: the app runs in the process itself), started one after
    another; each must answer `GET /health`. `environment` is added to this process's, after
    `DATABASE_URL` and `IPT_FHIR_LOAD_CONTENT_ON_START=false`."""
    started: list[Server] = []
    try:
        for _ in range(count):
            server = await asyncio.to_thread(
                _start,
                database_url,
                app=app,
                environment=environment or {},
                workers=workers,
                start_timeout=start_timeout,
            )
            started.append(server)
        yield started
    finally:
        for server in started:
            server.process.terminate()
        for server in started:
            server.process.wait(timeout=30)


@asynccontextmanager
async def services(database_url: str, count: int = 1) -> AsyncIterator[list[str]]:
    """`count` service processes on the database, each on a port of its own; yields their base URLs.

    Separate processes rather than uvicorn's `--workers`: those share one listening socket, and which of
    them accepts a connection is chance (a burst of new connections often all goes to one), so the load
    would not be split evenly. With a port each, a client spreads its connections as a load balancer in
    front of the processes would.
    """
    async with servers(database_url, count) as started:
        yield [server.base for server in started]


def auth_headers(expires_in: int = 7200) -> dict[str, str]:
    """A `system/*.cruds` development token, minted as `ipt-fhir token` does."""
    security = importlib.import_module("service.api.security")
    from service.config import get_settings

    token = security.mint_token(
        get_settings(), scope="system/*.cruds", subject="bench", expires_in=expires_in
    )
    return {"Authorization": f"Bearer {token}"}
