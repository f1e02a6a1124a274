"""Append an AuditEvent, apart from the request's own transaction so that a refused or failed request is
recorded too."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from service.storage.repository import ResourceRepository


async def record_audit_event(engine: AsyncEngine, event: dict[str, Any]) -> None:
    async with engine.connect() as connection:
        # A create is one statement, atomic by itself: no BEGIN and COMMIT round trips on every request.
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        await ResourceRepository(connection).create("AuditEvent", event)
