"""Load the IPT content (worksheets, terminology, protocol) into the database, idempotently.

Each definition is identified by its canonical `url|version`, and each business version is its own
resource with the id `<content id>-<version>`, so older versions stay readable and searchable after a new
one is published. A definition already stored with the same content writes nothing; one whose content
differs under the same version is overwritten as a new resource version and reported, because content must
not change without a version bump (a test on the content sources enforces that before release).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from mappings.content import load_content
from service.fhir.parsing import check_resource
from service.interactions.writes import write_pipeline
from service.storage.repository import ResourceRepository

log = logging.getLogger(__name__)

# One loader at a time across worker processes; the key is an arbitrary constant of this service.
_LOAD_LOCK = 0x1F7_C0DE


@dataclass(slots=True)
class LoadReport:
    created: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    changed_without_new_version: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{len(self.created)} created, {len(self.unchanged)} unchanged, "
            f"{len(self.changed_without_new_version)} overwritten under the same version"
        )


def content_resource_id(resource: dict[str, Any]) -> str:
    return f"{resource['id']}-{resource['version']}"


async def load_ipt_content(engine: AsyncEngine, resources: list[dict[str, Any]] | None = None) -> LoadReport:
    """Upsert every content resource by `url|version`, in one transaction."""
    report = LoadReport()
    async with engine.begin() as connection:
        await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOAD_LOCK})
        repository = ResourceRepository(connection)
        pipeline = write_pipeline()
        for resource in resources if resources is not None else load_content():
            resource_type = resource["resourceType"]
            canonical = f"{resource['url']}|{resource['version']}"
            content = check_resource(resource_type, {**resource, "id": content_resource_id(resource)})
            stored = await repository.find_by_canonical(resource_type, canonical)
            if stored is None:
                await pipeline.update(repository, resource_type, content["id"], content)
                report.created.append(canonical)
                continue
            assert stored.content is not None
            if _definition(orjson.loads(stored.content)) == _definition(content):
                report.unchanged.append(canonical)
                continue
            log.warning("%s changed without a new version; overwriting it", canonical)
            await pipeline.update(repository, resource_type, stored.id, {**content, "id": stored.id})
            report.changed_without_new_version.append(canonical)
    return report


def _definition(resource: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in resource.items() if k not in ("id", "meta")}
