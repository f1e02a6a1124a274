"""Test fixtures: a real PostgreSQL for every test that touches storage.

With `DATABASE_URL` set, the tests create their databases on that server; otherwise they start the embedded
PostgreSQL under `.data/test`. Each xdist worker gets its own database, migrated once with Alembic; tables
are emptied before each test, so every test starts from a clean, real schema.
"""

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import make_url, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from service.api.security import mint_token
from service.app import create_app
from service.config import Settings
from service.storage.db import async_url, start_embedded_postgres, upgrade_to_head
from service.storage.tables import resource_versions

ROOT = Path(__file__).resolve().parents[1]
TEST_DATA_DIR = ROOT / ".data" / "test"
TEST_JWT_SECRET = "a-secret-for-the-test-suite-only-0123456789abcdef"
FULL_ACCESS = "system/*.cruds"


def _server_url() -> str:
    configured = os.environ.get("DATABASE_URL")
    if configured:
        return configured
    return start_embedded_postgres(TEST_DATA_DIR, database="postgres")


def _with_database(url: str, database: str) -> str:
    return make_url(url).set(database=database).render_as_string(hide_password=False)


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _recreate(server_url: str, database: str) -> None:
    connection = await asyncpg.connect(_asyncpg_dsn(server_url))
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await connection.execute(f'CREATE DATABASE "{database}"')
    finally:
        await connection.close()


async def _drop(server_url: str, database: str) -> None:
    connection = await asyncpg.connect(_asyncpg_dsn(server_url))
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    finally:
        await connection.close()


@pytest.fixture(scope="session")
def worker_database_url(worker_id: str, testrun_uid: str) -> Iterator[str]:
    # Unique per run and worker, so that runs side by side on one server never share a database.
    server = _server_url()
    database = f"ipt_fhir_test_{testrun_uid[:12]}_{worker_id}"
    asyncio.run(_recreate(server, database))
    url = _with_database(server, database)
    upgrade_to_head(url)
    yield url
    asyncio.run(_drop(server, database))


@pytest.fixture(scope="session")
def settings(worker_database_url: str) -> Settings:
    return Settings(database_url=worker_database_url, max_page_size=500, jwt_secret=TEST_JWT_SECRET)


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(scope="session")
def engine(app: FastAPI) -> AsyncEngine:
    engine: AsyncEngine = app.state.engine
    return engine


async def _empty_tables(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        names = (
            await connection.execute(
                text(
                    "SELECT tablename FROM pg_tables"
                    " WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
                )
            )
        ).scalars()
        tables = ", ".join(f'"{name}"' for name in names)
        if tables:
            await connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY"))


@pytest.fixture
def token(settings: Settings) -> Callable[..., str]:
    """Mint a bearer token: `token("patient/*.rs", patient="p1")`."""

    def mint(scope: str = FULL_ACCESS, **claims: Any) -> str:
        return mint_token(settings, scope=scope, **claims)

    return mint


@pytest.fixture
def flush_audit(app: FastAPI) -> Callable[[], Awaitable[bool]]:
    """Write the buffered AuditEvents (of reads, searches and refusals) now.

    They reach the database within the flush interval; a test that counts the audit trail right after a
    request awaits this first, rather than the interval.
    """
    flush: Callable[[], Awaitable[bool]] = app.state.audit_buffer.flush
    return flush


@pytest.fixture
async def anonymous_client(app: FastAPI, engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    """A client that sends no token; each test adds the `Authorization` it is about."""
    # The events of the previous test's requests are written before the tables are emptied, not after.
    await app.state.audit_buffer.flush()
    await _empty_tables(engine)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture
async def client(anonymous_client: httpx.AsyncClient, token: Callable[..., str]) -> httpx.AsyncClient:
    """A client with full system access, for the tests that are not about authorization."""
    anonymous_client.headers["Authorization"] = f"Bearer {token()}"
    return anonymous_client


@pytest.fixture
def asyncpg_url(worker_database_url: str) -> str:
    return async_url(worker_database_url)


async def stored_audit_events(engine: AsyncEngine) -> list[dict[str, object]]:
    """The AuditEvents in the database, in the order they were stored (one buffered write keeps the order
    of its requests)."""
    async with engine.connect() as connection:
        rows = await connection.execute(
            select(resource_versions.c.content)
            .where(resource_versions.c.resource_type == "AuditEvent")
            .order_by(resource_versions.c.seq)
        )
        return list(rows.scalars())
