"""update (and create-on-update): https://hl7.org/fhir/R4/http.html#update"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from service.fhir.compartment import ensure_writable
from service.interactions.hooks import run_after_write, run_write_rules
from service.storage.repository import ResourceRepository, StoredVersion


async def update_resource(
    engine: AsyncEngine,
    resource_type: str,
    resource_id: str,
    content: dict[str, Any],
    *,
    if_match: int | None = None,
) -> StoredVersion:
    """Write a new version of `resource_type/resource_id`, creating it if it does not exist."""
    ensure_writable(resource_type, resource_id, content)  # as in create_resource
    async with engine.begin() as connection:
        repository = ResourceRepository(connection)
        # Locked, so the write rules judge the change against the version it replaces, not an older one.
        current = await repository.read_for_update(resource_type, resource_id)
        await run_write_rules(repository, resource_type, content, current)
        written = await repository.update(resource_type, resource_id, content, if_match=if_match)
        await run_after_write(repository, written, current)
        return written
