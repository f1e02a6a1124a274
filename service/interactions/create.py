"""create: https://hl7.org/fhir/R4/http.html#create"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from service.fhir.compartment import ensure_writable
from service.interactions.hooks import run_after_write, run_write_rules
from service.storage.repository import ResourceRepository, StoredVersion


async def create_resource(engine: AsyncEngine, resource_type: str, content: dict[str, Any]) -> StoredVersion:
    """Store `content` as version 1 of a new resource with a server-assigned id."""
    content = {k: v for k, v in content.items() if k != "id"}
    # Storage refuses it too; refused first, the answer names the compartment instead of whatever a write
    # rule finds missing in it.
    ensure_writable(resource_type, "", content)
    async with engine.begin() as connection:
        repository = ResourceRepository(connection)
        await run_write_rules(repository, resource_type, content, None)
        created = await repository.create(resource_type, content)
        await run_after_write(repository, created, None)
        return created
