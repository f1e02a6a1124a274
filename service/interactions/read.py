"""read: https://hl7.org/fhir/R4/http.html#read"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from service.errors import Gone, Issue, NotFound
from service.storage.reading import reading
from service.storage.repository import ResourceRepository, StoredVersion


async def read_resource(engine: AsyncEngine, resource_type: str, resource_id: str) -> StoredVersion:
    """The current version; 404 if it never existed, 410 if it was deleted."""
    async with reading(engine) as connection:
        found = await ResourceRepository(connection).read(resource_type, resource_id)
    if found is None:
        raise NotFound(Issue(f"{resource_type}/{resource_id} is not known", expression=resource_type))
    if found.deleted:
        raise Gone(
            Issue(f"{resource_type}/{resource_id} was deleted (version {found.version_id})"),
            headers={"ETag": f'W/"{found.version_id}"'},
        )
    return found
