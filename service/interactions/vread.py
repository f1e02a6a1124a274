"""vread: https://hl7.org/fhir/R4/http.html#vread"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from service.errors import Gone, Issue, NotFound
from service.storage.reading import reading
from service.storage.repository import ResourceRepository, StoredVersion


async def vread_resource(
    engine: AsyncEngine, resource_type: str, resource_id: str, version_id: int
) -> StoredVersion:
    """One version; 404 if there is no such version, 410 if that version records the deletion."""
    async with reading(engine) as connection:
        found = await ResourceRepository(connection).vread(resource_type, resource_id, version_id)
    if found is None:
        raise NotFound(Issue(f"{resource_type}/{resource_id} has no version {version_id}"))
    if found.deleted:
        raise Gone(Issue(f"version {version_id} of {resource_type}/{resource_id} records its deletion"))
    return found
