"""history (instance, type and system): https://hl7.org/fhir/R4/http.html#history

Pages are cut on the global write sequence, newest first: the `next` link carries the sequence number of
the last entry shown, so pages stay stable while others write.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode

from sqlalchemy.ext.asyncio import AsyncEngine

from service.errors import Issue, NotFound
from service.fhir.access import AUDIT_EVENT, ensure_may_send
from service.fhir.bundle import BundleDocument, Entry, Link, instant
from service.fhir.search_parameters import served_types
from service.storage.reading import reading
from service.storage.repository import HistoryEntry, ResourceRepository

_STATUS = {"POST": "201 Created", "PUT": "200 OK", "DELETE": "204 No Content"}


@dataclass(frozen=True, slots=True)
class HistoryQuery:
    count: int
    since: datetime | None = None
    cursor: int | None = None


async def history(
    engine: AsyncEngine,
    query: HistoryQuery,
    *,
    base_url: str,
    resource_type: str | None = None,
    resource_id: str | None = None,
) -> bytes:
    # Each version is judged by the compartment it was written in: a Goal moved from one patient to
    # another shows its earlier versions only to those who may see the earlier patient's records. The audit
    # trail has its own, more tightly scoped, read path.
    types = [resource_type] if resource_type is not None else sorted(served_types() - {AUDIT_EVENT})
    async with reading(engine) as connection:
        repository = ResourceRepository(connection)
        rows = await repository.history(
            resource_type=resource_type,
            resource_id=resource_id,
            since=query.since,
            before_seq=query.cursor,
            types=types,
            limit=query.count + 1,
        )
        total = None
        if resource_type is not None and resource_id is not None:
            total = await repository.count_versions(resource_type, resource_id)
            if total == 0:
                raise NotFound(Issue(f"{resource_type}/{resource_id} is not known"))
    for row in rows:
        ensure_may_send(row.version.resource_type, row.patient_id, "r")
    page, more = rows[: query.count], len(rows) > query.count
    path = "/".join(p for p in (resource_type, resource_id, "_history") if p)
    params: dict[str, str] = {"_count": str(query.count)}
    if query.since is not None:
        params["_since"] = instant(query.since)
    links = [
        Link("self", _url(base_url, path, params, query.cursor)),
        Link("first", _url(base_url, path, params)),
    ]
    if more:
        links.append(Link("next", _url(base_url, path, params, page[-1].seq)))
    return BundleDocument(
        "history", entries=[_entry(row, base_url) for row in page], links=links, total=total
    ).render()


def _url(base_url: str, path: str, params: dict[str, str], cursor: int | None = None) -> str:
    query = dict(params)
    if cursor is not None:
        query["_cursor"] = str(cursor)
    return f"{base_url}/{path}?{urlencode(query)}"


def _entry(row: HistoryEntry, base_url: str) -> Entry:
    version = row.version
    reference = f"{version.resource_type}/{version.id}"
    request_url = version.resource_type if row.method == "POST" else reference
    response = {
        "status": _STATUS[row.method],
        "etag": f'W/"{version.version_id}"',
        "lastModified": instant(version.last_updated),
    }
    if row.method != "DELETE":
        response["location"] = f"{reference}/_history/{version.version_id}"
    return Entry(
        full_url=f"{base_url}/{reference}",
        resource=version.content,
        request={"method": row.method, "url": request_url},
        response=response,
    )
