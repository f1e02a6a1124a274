"""update (and create-on-update): https://hl7.org/fhir/R4/http.html#update"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from service.interactions.writes import write_pipeline
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
    async with engine.begin() as connection:
        repository = ResourceRepository(connection, cache_reads=True)
        return await write_pipeline().update(
            repository, resource_type, resource_id, content, if_match=if_match
        )
