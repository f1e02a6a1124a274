"""delete: https://hl7.org/fhir/R4/http.html#delete"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from service.errors import Issue, NotFound
from service.storage.repository import ResourceRepository, StoredVersion


async def delete_resource(
    engine: AsyncEngine, resource_type: str, resource_id: str, *, if_match: int | None = None
) -> StoredVersion:
    """Delete a resource; deleting one already deleted succeeds again and writes nothing."""
    async with engine.begin() as connection:
        deleted = await ResourceRepository(connection).delete(resource_type, resource_id, if_match=if_match)
    if deleted is None:
        raise NotFound(Issue(f"{resource_type}/{resource_id} is not known", expression=resource_type))
    return deleted
