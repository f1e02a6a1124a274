"""Bundles assembled from stored JSON text.

https://hl7.org/fhir/R4/bundle.html and https://hl7.org/fhir/R4/http.html#history. A stored resource is
spliced into its entry as the bytes PostgreSQL returned, so building a page never parses a resource.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

BundleType = Literal["history", "searchset", "batch-response", "transaction-response"]


@dataclass(frozen=True, slots=True)
class Entry:
    full_url: str
    resource: bytes | None = None
    request: dict[str, Any] | None = None
    response: dict[str, Any] | None = None
    search: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Link:
    relation: str
    url: str


@dataclass(slots=True)
class BundleDocument:
    type: BundleType
    entries: Sequence[Entry] = ()
    links: Sequence[Link] = ()
    total: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def render(self) -> bytes:
        now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        head: dict[str, Any] = {
            "resourceType": "Bundle",
            "id": str(uuid.uuid4()),
            "meta": {"lastUpdated": now},
            "type": self.type,
        }
        if self.total is not None:
            head["total"] = self.total
        if self.links:
            head["link"] = [{"relation": link.relation, "url": link.url} for link in self.links]
        head.update(self.extra)
        if not self.entries:
            return orjson.dumps(head)
        parts = [orjson.dumps(head)[:-1], b',"entry":[']
        for index, entry in enumerate(self.entries):
            if index:
                parts.append(b",")
            parts.append(_render_entry(entry))
        parts.append(b"]}")
        return b"".join(parts)


def _render_entry(entry: Entry) -> bytes:
    body: dict[str, Any] = {"fullUrl": entry.full_url}
    if entry.search is not None:
        body["search"] = entry.search
    if entry.request is not None:
        body["request"] = entry.request
    if entry.response is not None:
        body["response"] = entry.response
    rendered = orjson.dumps(body)
    if entry.resource is None:
        return rendered
    return rendered[:-1] + b',"resource":' + entry.resource + b"}"


def http_date(moment: datetime) -> str:
    """RFC 9110 IMF-fixdate, as `Last-Modified` wants it."""
    return moment.astimezone(UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")


def instant(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
