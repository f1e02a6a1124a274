"""Append an AuditEvent, in a transaction of its own so that a refused or failed request is recorded too."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from service.storage.repository import ResourceRepository


async def record_audit_event(engine: AsyncEngine, event: dict[str, Any]) -> None:
    async with engine.begin() as connection:
        await ResourceRepository(connection).create("AuditEvent", event)
