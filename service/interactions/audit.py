"""Append AuditEvents recorded apart from any write's transaction (reads, searches, refused and failed
requests), several at once."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from service.fhir.access import AUDIT_EVENT
from service.storage.repository import ResourceRepository


async def write_audit_events(
    engine: AsyncEngine, events: Sequence[tuple[str, dict[str, Any]]], *, again: bool = False
) -> None:
    """Store `events` (`(id, AuditEvent)`) in one transaction, the rows of each table in one COPY.

    `again` after a failed attempt: one whose COMMIT reached the database before the connection broke has
    stored its events already, and those are skipped rather than refused as duplicates forever.
    """
    async with engine.begin() as connection:
        repository = ResourceRepository(connection)
        if again:
            stored = await repository.stored_ids(AUDIT_EVENT, [event_id for event_id, _ in events])
            events = [(event_id, event) for event_id, event in events if event_id not in stored]
        await repository.create_many([(AUDIT_EVENT, event_id, event) for event_id, event in events])
