"""patch: https://hl7.org/fhir/R4/http.html#patch

The current version is read under its row lock, the patch applied to it (`service.fhir.patch`), and the
result validated and written exactly as the body of a PUT would be: the same parsing and required-binding
checks, the same write rules (references, QuestionnaireResponse validation), the same `If-Match` check.
A patch that cannot be applied, or whose result is invalid, writes nothing.
"""

from __future__ import annotations

from typing import Any, Literal

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine

from service.errors import Gone, Issue, NotFound, PreconditionFailed
from service.fhir.parsing import check_resource
from service.fhir.patch import apply_fhirpath_patch, apply_json_patch
from service.interactions.writes import write_pipeline
from service.storage.repository import ResourceRepository, StoredVersion

PatchFormat = Literal["json-patch", "fhirpath-patch"]


def patched_content(
    resource_type: str, current: StoredVersion, patch_format: PatchFormat, body: Any
) -> dict[str, Any]:
    """The new content: `body` applied to the current version, checked as a PUT body is."""
    if current.content is None:
        raise Gone(Issue(f"{resource_type}/{current.id} was deleted; it cannot be patched"))
    before = orjson.loads(current.content)
    if patch_format == "json-patch":
        after = apply_json_patch(before, body)
    else:
        after = apply_fhirpath_patch(before, body)
    return check_resource(resource_type, after)


async def patch_in(
    repository: ResourceRepository,
    resource_type: str,
    resource_id: str,
    patch_format: PatchFormat,
    body: Any,
    *,
    if_match: int | None = None,
) -> StoredVersion:
    current = await repository.read_for_update(resource_type, resource_id)
    if current is None:
        raise NotFound(Issue(f"{resource_type}/{resource_id} is not known", expression=resource_type))
    if if_match is not None and if_match != current.version_id:
        # Checked before applying, so a stale client learns that rather than a patch failure.
        raise PreconditionFailed(
            Issue(
                f"If-Match names version {if_match} but the current version of "
                f"{resource_type}/{resource_id} is {current.version_id}",
                expression="If-Match",
            )
        )
    content = patched_content(resource_type, current, patch_format, body)
    return await write_pipeline().update(repository, resource_type, resource_id, content, current=current)


async def patch_resource(
    engine: AsyncEngine,
    resource_type: str,
    resource_id: str,
    patch_format: PatchFormat,
    body: Any,
    *,
    if_match: int | None = None,
) -> StoredVersion:
    async with engine.begin() as connection:
        return await patch_in(
            ResourceRepository(connection), resource_type, resource_id, patch_format, body, if_match=if_match
        )
