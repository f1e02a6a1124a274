"""create: https://hl7.org/fhir/R4/http.html#create"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from service.interactions.writes import write_pipeline
from service.storage.repository import ResourceRepository, StoredVersion


async def create_resource(engine: AsyncEngine, resource_type: str, content: dict[str, Any]) -> StoredVersion:
    """Store `content` as version 1 of a new resource with a server-assigned id."""
    content = {k: v for k, v in content.items() if k != "id"}
    async with engine.begin() as connection:
        return await write_pipeline().create(
            ResourceRepository(connection, cache_reads=True), resource_type, content
        )
