"""Batch and transaction Bundles, read and checked without a database.

https://hl7.org/fhir/R4/http.html#transaction. `read_bundle` checks what the whole request must satisfy
(a Bundle of type `batch` or `transaction`, at most `max_entries` entries, unique `fullUrl`s, and in a
transaction no two entries writing the same resource) and reads each entry into a `BundleEntry`. A fault of
one entry is kept on the entry (`BundleEntry.error`): a batch answers it in that entry's response, a
transaction fails as a whole.

`processing_order` gives the order of https://hl7.org/fhir/R4/http.html#trules (DELETE, POST, PUT/PATCH,
GET/HEAD, request order within each), and `rewrite_references` replaces every `urn:uuid:`/`urn:oid:` (or
other) `fullUrl` of a created resource by its new `Type/id`, wherever the Bundle mentions it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, cast, get_args
from urllib.parse import parse_qsl, urlsplit

from service.errors import BadRequest, FhirError, Issue, NotFound, PayloadTooLarge
from service.fhir.registry import RESOURCES

Method = Literal["DELETE", "POST", "PUT", "PATCH", "GET", "HEAD"]
BundleKind = Literal["batch", "transaction"]

ORDER: tuple[Method, ...] = ("DELETE", "POST", "PUT", "PATCH", "GET", "HEAD")
_RANK = {"DELETE": 0, "POST": 1, "PUT": 2, "PATCH": 2, "GET": 3, "HEAD": 3}
_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_TYPE = re.compile(r"[A-Z][A-Za-z]+")
_PLACEHOLDER = ("urn:uuid:", "urn:oid:")


@dataclass(slots=True)
class BundleEntry:
    """One `Bundle.entry`, read: the request's parts, and the fault that makes it unprocessable, if any.

    `query` holds the search parameters of a conditional URL (`PUT Patient?identifier=x`) or of a search.
    """

    index: int
    method: Method | None = None
    url: str = ""
    resource_type: str | None = None
    resource_id: str | None = None
    version_id: int | None = None
    query: tuple[tuple[str, str], ...] = ()
    operation: str | None = None
    full_url: str | None = None
    resource: dict[str, Any] | None = None
    if_match: str | None = None
    if_none_match: str | None = None
    if_none_exist: str | None = None
    error: FhirError | None = None

    @property
    def location(self) -> str:
        return f"Bundle.entry[{self.index}]"

    @property
    def conditional(self) -> bool:
        return bool(self.query) and self.resource_id is None and self.method in ("PUT", "DELETE", "PATCH")


@dataclass(slots=True)
class ReadBundle:
    kind: BundleKind
    entries: list[BundleEntry] = field(default_factory=list)


def read_bundle(payload: dict[str, Any], *, max_entries: int, base_url: str | None = None) -> ReadBundle:
    """Check the Bundle as a whole and read its entries; raises for a fault of the whole request."""
    if payload.get("resourceType") != "Bundle":
        raise BadRequest(
            Issue(
                f"POST [base] takes a Bundle, not {payload.get('resourceType')!r}",
                expression="Bundle.resourceType",
            )
        )
    kind = payload.get("type")
    if kind not in get_args(BundleKind):
        raise BadRequest(
            Issue(f"Bundle.type must be batch or transaction, not {kind!r}", expression="Bundle.type")
        )
    raw_entries = payload.get("entry", [])
    if not isinstance(raw_entries, list):
        raise BadRequest(Issue("Bundle.entry must be an array", expression="Bundle.entry"))
    if len(raw_entries) > max_entries:
        raise PayloadTooLarge(
            Issue(
                f"the Bundle has {len(raw_entries)} entries; at most {max_entries} are accepted",
                expression="Bundle.entry",
            )
        )
    bundle = ReadBundle(cast(BundleKind, kind))
    for index, raw in enumerate(raw_entries):
        entry = BundleEntry(index)
        try:
            _read_entry(entry, raw, base_url)
        except FhirError as error:
            entry.error = error
        bundle.entries.append(entry)
    _check_full_urls(bundle)
    if bundle.kind == "transaction":
        _check_single_writer(bundle)
    return bundle


def _read_entry(entry: BundleEntry, raw: Any, base_url: str | None) -> None:
    where = entry.location
    if not isinstance(raw, dict):
        raise BadRequest(Issue(f"{where} must be an object", expression=where))
    full_url = raw.get("fullUrl")
    if full_url is not None:
        if not isinstance(full_url, str) or not full_url:
            raise BadRequest(Issue(f"{where}.fullUrl must be a URI", expression=f"{where}.fullUrl"))
        entry.full_url = full_url
    request = raw.get("request")
    if not isinstance(request, dict):
        raise BadRequest(Issue(f"{where} has no request", expression=f"{where}.request", code="required"))
    method = request.get("method")
    if method not in _RANK:
        raise BadRequest(
            Issue(
                f"{where}.request.method must be one of {', '.join(ORDER)}, not {method!r}",
                expression=f"{where}.request.method",
            )
        )
    entry.method = cast(Method, method)
    url = request.get("url")
    if not isinstance(url, str) or not url.strip():
        raise BadRequest(
            Issue(f"{where}.request.url is missing", expression=f"{where}.request.url", code="required")
        )
    entry.url = url
    for key, attribute in (
        ("ifMatch", "if_match"),
        ("ifNoneMatch", "if_none_match"),
        ("ifNoneExist", "if_none_exist"),
    ):
        value = request.get(key)
        if value is not None:
            if not isinstance(value, str):
                raise BadRequest(
                    Issue(f"{where}.request.{key} must be a string", expression=f"{where}.request.{key}")
                )
            setattr(entry, attribute, value)
    _read_url(entry, _relative(url, base_url))
    resource = raw.get("resource")
    if resource is not None and not isinstance(resource, dict):
        raise BadRequest(Issue(f"{where}.resource must be a resource", expression=f"{where}.resource"))
    entry.resource = resource
    _check_resource_presence(entry)


def _relative(url: str, base_url: str | None) -> str:
    url = url.strip()
    if base_url and url.startswith(base_url.rstrip("/") + "/"):
        return url[len(base_url.rstrip("/")) + 1 :]
    return url.lstrip("/")


def _read_url(entry: BundleEntry, url: str) -> None:
    where = f"{entry.location}.request.url"
    parts = urlsplit(url)
    if parts.scheme or parts.netloc:
        raise BadRequest(
            Issue(
                f"{where}: {entry.url!r} is not a URL of this server", expression=where, code="not-supported"
            )
        )
    segments = [s for s in parts.path.split("/") if s]
    entry.query = tuple(parse_qsl(parts.query, keep_blank_values=True))
    if not segments:
        raise BadRequest(
            Issue(f"{where}: system-level requests are not supported in a Bundle", expression=where)
        )
    resource_type = segments[0]
    if not _TYPE.fullmatch(resource_type) or resource_type not in RESOURCES:
        raise NotFound(
            Issue(f"{where}: {resource_type!r} is not a resource type served here", expression=where)
        )
    entry.resource_type = resource_type
    rest = segments[1:]
    method = entry.method
    if rest and rest[0].startswith("$"):
        raise BadRequest(Issue(f"{where}: operations are not supported in a Bundle", expression=where))
    if len(rest) >= 1:
        if not _ID.fullmatch(rest[0]):
            raise BadRequest(Issue(f"{where}: {rest[0]!r} is not a valid id", expression=where))
        entry.resource_id = rest[0]
    if len(rest) == 3 and rest[1] == "_history" and rest[2].isdigit() and method in ("GET", "HEAD"):
        entry.version_id = int(rest[2])
    elif len(rest) > 1:
        raise BadRequest(Issue(f"{where}: {entry.url!r} is not a URL this method takes", expression=where))
    if method == "POST" and entry.resource_id is not None:
        raise BadRequest(Issue(f"{where}: POST takes the type only ({resource_type})", expression=where))
    if method in ("PUT", "DELETE", "PATCH") and entry.resource_id is None and not entry.query:
        raise BadRequest(
            Issue(
                f"{where}: {method} needs an id ({resource_type}/[id]) "
                f"or search criteria ({resource_type}?...)",
                expression=where,
            )
        )
    if entry.resource_id is not None and entry.query and method != "GET":
        raise BadRequest(Issue(f"{where}: an id and search criteria cannot be combined", expression=where))


def _check_resource_presence(entry: BundleEntry) -> None:
    where = entry.location
    if entry.method in ("POST", "PUT"):
        if entry.resource is None:
            raise BadRequest(
                Issue(
                    f"{where}: {entry.method} needs a resource",
                    expression=f"{where}.resource",
                    code="required",
                )
            )
        if entry.resource.get("resourceType") != entry.resource_type:
            raise BadRequest(
                Issue(
                    f"{where}.resource is a {entry.resource.get('resourceType')!r}, "
                    f"but the request URL names {entry.resource_type}",
                    expression=f"{where}.resource.resourceType",
                )
            )
    elif entry.method == "PATCH" and (
        entry.resource is None or entry.resource.get("resourceType") not in ("Parameters", "Binary")
    ):
        raise BadRequest(
            Issue(
                f"{where}: PATCH in a Bundle needs a Parameters (FHIRPath Patch) "
                "or a Binary (JSON Patch) resource",
                expression=f"{where}.resource",
            )
        )
    if entry.if_none_exist is not None and entry.method != "POST":
        raise BadRequest(
            Issue(f"{where}: ifNoneExist belongs to a POST", expression=f"{where}.request.ifNoneExist")
        )


def _check_full_urls(bundle: ReadBundle) -> None:
    seen: dict[str, int] = {}
    for entry in bundle.entries:
        if entry.full_url is None:
            continue
        # Several versions of one resource may share a fullUrl (history in a Bundle); those are reads.
        if entry.full_url in seen and entry.method not in ("GET", "HEAD"):
            raise BadRequest(
                Issue(
                    f"{entry.location}.fullUrl {entry.full_url!r} is also the fullUrl of "
                    f"Bundle.entry[{seen[entry.full_url]}]",
                    expression=f"{entry.location}.fullUrl",
                )
            )
        seen.setdefault(entry.full_url, entry.index)


def _check_single_writer(bundle: ReadBundle) -> None:
    writers: dict[str, int] = {}
    for entry in bundle.entries:
        if entry.error is not None or entry.method not in ("PUT", "DELETE", "PATCH"):
            continue
        if entry.resource_id is not None:
            key = f"{entry.resource_type}/{entry.resource_id}"
        else:
            key = f"{entry.resource_type}?{sorted(entry.query)}"
        if key in writers:
            raise BadRequest(
                Issue(
                    f"{entry.location} and Bundle.entry[{writers[key]}] both change {key.split('?')[0]}; "
                    "a transaction may change each resource once",
                    expression=entry.location,
                    code="business-rule",
                )
            )
        writers[key] = entry.index


def processing_order(entries: list[BundleEntry]) -> list[BundleEntry]:
    """The entries in the order a transaction processes them (stable within each method)."""
    return sorted(entries, key=lambda entry: (_RANK.get(entry.method or "GET", 3), entry.index))


def is_placeholder(full_url: str | None) -> bool:
    return full_url is not None and full_url.startswith(_PLACEHOLDER)


def rewrite_references(value: Any, mapping: Mapping[str, str], rewritten: set[str] | None = None) -> Any:
    """Replace every reference to a key of `mapping` (a fullUrl) with its value (`Type/id`), in place.

    Covers `Reference.reference` at any depth, any other string equal to a key (uri, url, canonical
    elements), and the narrative's `href`/`src` attributes. Returns `value` (a new one for a string).
    The values put in (`Type/id`, narrative aside) are added to `rewritten`, if given: what in the Bundle
    this resource refers to.
    """
    if not mapping:
        return value
    if isinstance(value, str):
        replacement = mapping.get(value)
        if replacement is None:
            return value
        if rewritten is not None:
            rewritten.add(replacement)
        return replacement
    if isinstance(value, list):
        for position, item in enumerate(value):
            if isinstance(item, str | list | dict):
                value[position] = rewrite_references(item, mapping, rewritten)
        return value
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "div" and isinstance(item, str):
                value[key] = _rewrite_narrative(item, mapping)
            elif isinstance(item, str | list | dict):
                value[key] = rewrite_references(item, mapping, rewritten)
    return value


def _rewrite_narrative(div: str, mapping: Mapping[str, str]) -> str:
    for old, new in mapping.items():
        if old in div:
            div = div.replace(f'"{old}"', f'"{new}"')
    return div


def query_string(query: tuple[tuple[str, str], ...]) -> str:
    """A conditional URL's criteria in a canonical order, to key locks and duplicates on."""
    return "&".join(f"{name}={value}" for name, value in sorted(query))
