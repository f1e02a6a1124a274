"""Connections for requests that only read."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine


@asynccontextmanager
async def reading(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A pooled connection outside any explicit transaction: each statement reads its own snapshot, and the
    BEGIN before the first and the ROLLBACK after the last, two round trips that a read by id would spend
    for nothing, are not sent. For reads whose statements need no common snapshot."""
    async with engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        yield connection
