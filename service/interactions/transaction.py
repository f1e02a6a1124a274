"""batch and transaction: https://hl7.org/fhir/R4/http.html#transaction

A **transaction** runs every entry in one database transaction: all or nothing. Entries are processed in
the order of https://hl7.org/fhir/R4/http.html#trules (DELETE, POST, PUT/PATCH, GET/HEAD):

1. deletes (conditional ones included); whether others still reference a deleted resource is checked at
   the end, against the Bundle's final state;
2. every POST and PUT gets its target before anything is written: a new id, the one match of an
   `ifNoneExist` or of a conditional URL, or the URL's id; then the `fullUrl` of each (`urn:uuid:`,
   `urn:oid:` or any other) is replaced by `Type/id` wherever the Bundle mentions it (`rewrite_references`);
3. creates are written together (`ResourceRepository.create_many`), in as many groups as it takes for a
   resource to be written before those that refer to it; then updates and patches one by one;
4. the literal references of everything written are checked in one query, so a reference to a resource
   created anywhere in the Bundle counts as existing;
5. reads see the transaction's own writes.

Any failing entry raises a `FhirError` whose issues name it (`Bundle.entry[3].resource.subject`), the
database transaction rolls back and nothing is written. The answer is a `transaction-response` Bundle in
request order, each entry with `status`, `location`, `etag` and `lastModified`.

A **batch** runs each entry in its own database transaction, in request order, and answers each with its
own response or OperationOutcome; no entry affects another.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Literal

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine

from service.errors import BadRequest, FhirError, Issue, NotFound, operation_outcome
from service.fhir.audit import note_read
from service.fhir.bundle import instant
from service.fhir.parsing import check_resource, loads
from service.fhir.transaction import (
    BundleEntry,
    ReadBundle,
    processing_order,
    read_bundle,
    rewrite_references,
)
from service.interactions.conditional import (
    Criteria,
    create_in,
    delete_in,
    find_match,
    parse_criteria,
    too_many,
    update_in,
)
from service.interactions.patch import PatchFormat, patch_in
from service.interactions.references import check_deferred, deferred_reference_checks
from service.interactions.writes import write_pipeline
from service.storage.repository import ResourceRepository, StoredVersion, new_id

ReturnPreference = Literal["minimal", "representation", "OperationOutcome"]


@dataclass(slots=True)
class _Outcome:
    """What one entry did: the version it wrote or read, and the HTTP status of its response."""

    status: int
    version: StoredVersion | None = None
    error: FhirError | None = None


@dataclass(slots=True)
class _Target:
    """Where a POST or PUT of a transaction writes: `resource_id`, and whether it exists already.

    `refers_to` holds the `Type/id` of the Bundle's entries that this entry's resource refers to (through
    their fullUrls), once the references are rewritten.
    """

    resource_id: str
    existing: StoredVersion | None = None
    refers_to: set[str] = field(default_factory=set)


async def process_bundle(
    engine: AsyncEngine,
    payload: dict[str, Any],
    *,
    base_url: str,
    max_entries: int,
    prefer: ReturnPreference = "representation",
) -> bytes:
    """Run a batch or transaction Bundle and return the response Bundle as JSON."""
    bundle = read_bundle(payload, max_entries=max_entries, base_url=base_url)
    if bundle.kind == "transaction":
        outcomes = await _transaction(engine, bundle, base_url)
    else:
        outcomes = [await _batch_entry(engine, entry, base_url) for entry in bundle.entries]
    return _render(bundle, outcomes, base_url=base_url, prefer=prefer)


# --- transaction -----------------------------------------------------------------------------------


async def _transaction(engine: AsyncEngine, bundle: ReadBundle, base_url: str) -> list[_Outcome]:
    for entry in bundle.entries:
        if entry.error is not None:
            raise _located(entry.error, entry)
    _check_distinct_conditions(bundle.entries)
    outcomes: dict[int, _Outcome] = {}
    ordered = processing_order(bundle.entries)
    pipeline = write_pipeline()
    async with engine.begin() as connection, deferred_reference_checks() as checks:
        repository = ResourceRepository(connection, cache_reads=True)
        current: BundleEntry | None = None
        try:
            deleted: list[tuple[BundleEntry, StoredVersion]] = []
            for entry in (e for e in ordered if e.method == "DELETE"):
                current = entry
                outcome = await _delete(repository, entry, base_url, check_referrers=False)
                outcomes[entry.index] = outcome
                if outcome.version is not None and outcome.version.changed:
                    deleted.append((entry, outcome.version))
            targets = await _targets(repository, ordered, base_url)
            posts = []
            for entry in (e for e in ordered if e.method == "POST"):
                target = targets[entry.index]
                if target.existing is not None:
                    outcomes[entry.index] = _Outcome(200, target.existing)
                else:
                    posts.append(entry)
            for layer in _layers(posts, targets):
                creates: list[BundleEntry] = []
                for entry in layer:
                    current = entry
                    assert entry.resource is not None
                    assert entry.resource_type is not None
                    content = check_resource(entry.resource_type, entry.resource)
                    content = {k: v for k, v in content.items() if k != "id"}
                    # The creates are written together below; checked here, a refusal names its entry.
                    checks.entry = entry.location
                    resource_id = targets[entry.index].resource_id
                    await pipeline.check(repository, entry.resource_type, resource_id, content, None)
                    entry.resource = content
                    creates.append(entry)
                current = None
                written = await pipeline.create_many(
                    repository,
                    [
                        (e.resource_type or "", targets[e.index].resource_id, e.resource or {})
                        for e in creates
                    ],
                    checked=True,
                )
                for entry, version in zip(creates, written, strict=True):
                    outcomes[entry.index] = _Outcome(201, version)
            for entry in (e for e in ordered if e.method in ("PUT", "PATCH")):
                current = entry
                checks.entry = entry.location
                if entry.method == "PUT":
                    outcomes[entry.index] = await _put(repository, entry, targets[entry.index].resource_id)
                else:
                    outcomes[entry.index] = await _patch(repository, entry, base_url)
            current = None
            await check_deferred(repository, checks)
            for entry, version in deleted:
                current = entry
                await repository.check_unreferenced(version.resource_type, version.id)
            for entry in (e for e in ordered if e.method in ("GET", "HEAD")):
                current = entry
                outcomes[entry.index] = await _read(repository, entry)
        except FhirError as error:
            raise _located(error, current) from None
    return [outcomes[entry.index] for entry in bundle.entries]


def _layers(posts: list[BundleEntry], targets: dict[int, _Target]) -> list[list[BundleEntry]]:
    """The creates in groups, each written before the next, so that a group's write rules can read every
    resource of this Bundle that its resources refer to (a QuestionnaireResponse's subject Patient).

    Within a group the creates are written together; references among them, and cycles, are left to the
    deferred reference check, which sees the whole Bundle.
    """
    created = {f"{e.resource_type}/{targets[e.index].resource_id}": e.index for e in posts}
    # A create's new id is known only through its fullUrl, so only a rewritten reference can name it.
    needs = {
        e.index: {created[r] for r in targets[e.index].refers_to if r in created and created[r] != e.index}
        for e in posts
    }
    layers: list[list[BundleEntry]] = []
    done: set[int] = set()
    remaining = list(posts)
    while remaining:
        layer = [e for e in remaining if needs[e.index] <= done] or remaining
        layers.append(layer)
        done.update(e.index for e in layer)
        remaining = [e for e in remaining if e.index not in done]
    return layers


def _check_distinct_conditions(entries: list[BundleEntry]) -> None:
    """Two conditional creates with the same criteria would both see no match and both create."""
    seen: dict[str, int] = {}
    for entry in entries:
        if entry.method != "POST" or entry.if_none_exist is None:
            continue
        key = f"{entry.resource_type}?{entry.if_none_exist.strip().lstrip('?')}"
        if key in seen:
            raise BadRequest(
                Issue(
                    f"{entry.location} and Bundle.entry[{seen[key]}] are conditional creates with the same "
                    "ifNoneExist; send the resource once",
                    expression=f"{entry.location}.request.ifNoneExist",
                )
            )
        seen[key] = entry.index


async def _targets(
    repository: ResourceRepository, ordered: list[BundleEntry], base_url: str
) -> dict[int, _Target]:
    """Give every POST and PUT its id, then rewrite every reference to a `fullUrl` to that id."""
    targets: dict[int, _Target] = {}
    mapping: dict[str, str] = {}
    conditional: list[BundleEntry] = []
    for entry in ordered:
        if entry.method == "POST" and entry.if_none_exist is None:
            targets[entry.index] = _Target(new_id())
        elif entry.method in ("PUT", "PATCH") and entry.resource_id is not None:
            targets[entry.index] = _Target(entry.resource_id)
        elif entry.method in ("POST", "PUT"):
            conditional.append(entry)
        else:
            continue
        if entry.index in targets and entry.full_url is not None:
            mapping[entry.full_url] = f"{entry.resource_type}/{targets[entry.index].resource_id}"
    # Conditional entries last: their criteria may name a placeholder that an unconditional entry defines.
    for entry in conditional:
        try:
            targets[entry.index] = await _conditional_target(repository, entry, mapping, base_url)
        except FhirError as error:
            raise _located(error, entry) from None
        if entry.full_url is not None:
            mapping[entry.full_url] = f"{entry.resource_type}/{targets[entry.index].resource_id}"
    for entry in ordered:
        if entry.resource is not None and entry.method in ("POST", "PUT", "PATCH"):
            target = targets.get(entry.index)
            rewrite_references(entry.resource, mapping, target.refers_to if target is not None else None)
        if entry.query and mapping:
            entry.query = tuple((name, mapping.get(value, value)) for name, value in entry.query)
    return targets


async def _conditional_target(
    repository: ResourceRepository, entry: BundleEntry, mapping: dict[str, str], base_url: str
) -> _Target:
    assert entry.resource_type is not None
    if entry.method == "POST":
        assert entry.if_none_exist is not None
        expression = f"{entry.location}.request.ifNoneExist"
        criteria = parse_criteria(entry.if_none_exist, entry.resource_type, expression=expression)
    else:
        expression = f"{entry.location}.request.url"
        criteria = entry.query
    criteria = _rewritten(criteria, mapping)
    match = await find_match(
        repository.connection, entry.resource_type, criteria, base_url=base_url, expression=expression
    )
    if match.several:
        raise too_many(entry.resource_type, criteria, expression)
    if match.id is None:
        body_id = (entry.resource or {}).get("id") if entry.method == "PUT" else None
        return _Target(str(body_id) if body_id else new_id())
    if entry.method == "POST":
        existing = await repository.read(entry.resource_type, match.id)
        return _Target(match.id, existing)
    return _Target(match.id)


def _rewritten(criteria: Criteria, mapping: dict[str, str]) -> Criteria:
    return tuple((name, mapping.get(value, value)) for name, value in criteria)


# --- one entry -------------------------------------------------------------------------------------


async def _delete(
    repository: ResourceRepository, entry: BundleEntry, base_url: str, *, check_referrers: bool
) -> _Outcome:
    assert entry.resource_type is not None
    if_match = _if_match(entry)
    if entry.resource_id is None:
        version = await delete_in(
            repository,
            entry.resource_type,
            entry.query,
            if_match=if_match,
            base_url=base_url,
            expression=f"{entry.location}.request.url",
            check_referrers=check_referrers,
        )
        return _Outcome(204, version)
    deleted = await repository.delete(
        entry.resource_type, entry.resource_id, if_match=if_match, check_referrers=check_referrers
    )
    if deleted is None:
        raise NotFound(Issue(f"{entry.resource_type}/{entry.resource_id} is not known"))
    return _Outcome(204, deleted)


async def _put(repository: ResourceRepository, entry: BundleEntry, resource_id: str) -> _Outcome:
    assert entry.resource is not None
    assert entry.resource_type is not None
    body_id = entry.resource.get("id")
    if body_id is not None and body_id != resource_id:
        raise BadRequest(
            Issue(
                f"the resource's id {body_id!r} differs from the request's {resource_id!r}",
                expression=f"{entry.resource_type}.id",
            )
        )
    content = check_resource(entry.resource_type, {**entry.resource, "id": resource_id})
    written = await write_pipeline().update(
        repository, entry.resource_type, resource_id, content, if_match=_if_match(entry)
    )
    return _Outcome(201 if written.created else 200, written)


async def _patch(repository: ResourceRepository, entry: BundleEntry, base_url: str) -> _Outcome:
    assert entry.resource is not None
    assert entry.resource_type is not None
    resource_id = entry.resource_id
    if resource_id is None:
        expression = f"{entry.location}.request.url"
        match = await find_match(
            repository.connection, entry.resource_type, entry.query, base_url=base_url, expression=expression
        )
        if match.several:
            raise too_many(entry.resource_type, entry.query, expression)
        if match.id is None:
            raise NotFound(Issue(f"no {entry.resource_type} matches the criteria", expression=expression))
        resource_id = match.id
    patch_format, body = _patch_body(entry)
    written = await patch_in(
        repository, entry.resource_type, resource_id, patch_format, body, if_match=_if_match(entry)
    )
    return _Outcome(200, written)


def _patch_body(entry: BundleEntry) -> tuple[PatchFormat, Any]:
    resource = entry.resource or {}
    if resource.get("resourceType") == "Parameters":
        return "fhirpath-patch", resource
    try:
        document = base64.b64decode(str(resource.get("data", "")), validate=True)
        return "json-patch", loads(document, root=f"{entry.location}.resource.data")
    except (binascii.Error, ValueError) as exc:
        raise BadRequest(
            Issue(
                "a Binary JSON Patch must carry the patch document as base64 JSON in data",
                expression="Binary.data",
            )
        ) from exc


async def _read(repository: ResourceRepository, entry: BundleEntry) -> _Outcome:
    assert entry.resource_type is not None
    if entry.resource_id is None:
        raise BadRequest(
            Issue(
                "searches inside a Bundle are not supported; use GET [type]?... directly",
                expression=f"{entry.location}.request.url",
                code="not-supported",
            )
        )
    if entry.version_id is not None:
        found = await repository.vread(entry.resource_type, entry.resource_id, entry.version_id)
    else:
        found = await repository.read(entry.resource_type, entry.resource_id)
    if found is None or found.deleted:
        raise NotFound(Issue(f"{entry.url} is not known (or was deleted)", expression=entry.resource_type))
    note_read(f"{found.resource_type}/{found.id}")
    return _Outcome(200, found)


def _if_match(entry: BundleEntry) -> int | None:
    if entry.if_match is None:
        return None
    digits = entry.if_match.strip().removeprefix("W/").strip('"')
    if not digits.isdigit():
        raise BadRequest(
            Issue(f'ifMatch must be an ETag such as W/"3", not {entry.if_match!r}', expression="If-Match")
        )
    return int(digits)


# --- batch -----------------------------------------------------------------------------------------


async def _batch_entry(engine: AsyncEngine, entry: BundleEntry, base_url: str) -> _Outcome:
    if entry.error is not None:
        return _Outcome(entry.error.status_code, error=_located(entry.error, entry))
    try:
        async with engine.begin() as connection:
            return await _single(ResourceRepository(connection), entry, base_url)
    except FhirError as error:
        return _Outcome(error.status_code, error=_located(error, entry))


async def _single(repository: ResourceRepository, entry: BundleEntry, base_url: str) -> _Outcome:
    """One batch entry, in its own transaction, with the same rules as the matching REST interaction."""
    assert entry.resource_type is not None
    if entry.method == "DELETE":
        return await _delete(repository, entry, base_url, check_referrers=True)
    if entry.method in ("GET", "HEAD"):
        return await _read(repository, entry)
    if entry.method == "PATCH":
        return await _patch(repository, entry, base_url)
    assert entry.resource is not None
    if entry.method == "PUT" and entry.resource_id is not None:
        return await _put(repository, entry, entry.resource_id)
    content = check_resource(entry.resource_type, entry.resource)
    if entry.method == "POST":
        if entry.if_none_exist is not None:
            expression = f"{entry.location}.request.ifNoneExist"
            criteria = parse_criteria(entry.if_none_exist, entry.resource_type, expression=expression)
            version = await create_in(
                repository, entry.resource_type, content, criteria, base_url=base_url, expression=expression
            )
            return _Outcome(201 if version.created else 200, version)
        content = {k: v for k, v in content.items() if k != "id"}
        return _Outcome(201, await write_pipeline().create(repository, entry.resource_type, content))
    version = await update_in(
        repository,
        entry.resource_type,
        content,
        entry.query,
        if_match=_if_match(entry),
        base_url=base_url,
        expression=f"{entry.location}.request.url",
    )
    return _Outcome(201 if version.created else 200, version)


# --- errors and the response -----------------------------------------------------------------------


def _located(error: FhirError, entry: BundleEntry | None) -> FhirError:
    """The same error, its issues re-rooted at the entry (`Bundle.entry[3]...`)."""
    if entry is None:
        return error
    issues = tuple(_relocate(issue, entry) for issue in error.issues)
    located = type(error)(*issues)
    located.headers = {}
    return located


def _relocate(issue: Issue, entry: BundleEntry) -> Issue:
    where = entry.location
    expression = issue.expression or ""
    resource_type = entry.resource_type or ""
    if expression.startswith("Bundle."):
        located = expression
    elif resource_type and (expression == resource_type or expression.startswith(f"{resource_type}.")):
        located = f"{where}.resource{expression[len(resource_type) :]}"
    elif expression == "If-Match":
        located = f"{where}.request.ifMatch"
    elif expression.startswith(("JsonPatch", "Parameters")):
        located = f"{where}.resource"
    else:
        located = where
    diagnostics = issue.diagnostics
    if not diagnostics.startswith(where):
        diagnostics = f"{where}: {diagnostics}"
    return Issue(diagnostics, expression=located, code=issue.code, severity=issue.severity)


def _render(
    bundle: ReadBundle, outcomes: list[_Outcome], *, base_url: str, prefer: ReturnPreference
) -> bytes:
    response_type = f"{bundle.kind}-response"
    parts = [
        orjson.dumps(
            {
                "resourceType": "Bundle",
                "id": new_id(),
                "type": response_type,
            }
        )[:-1],
        b',"entry":[',
    ]
    for position, (entry, outcome) in enumerate(zip(bundle.entries, outcomes, strict=True)):
        if position:
            parts.append(b",")
        parts.append(_render_entry(entry, outcome, base_url=base_url, prefer=prefer))
    parts.append(b"]}")
    return b"".join(parts)


def _render_entry(entry: BundleEntry, outcome: _Outcome, *, base_url: str, prefer: ReturnPreference) -> bytes:
    if outcome.error is not None:
        failure = {"status": _status(outcome.status), "outcome": outcome.error.to_operation_outcome()}
        return orjson.dumps({"response": failure})
    version = outcome.version
    assert version is not None
    body: dict[str, Any] = {}
    response: dict[str, Any] = {"status": _status(outcome.status)}
    reference = f"{version.resource_type}/{version.id}"
    if entry.method != "DELETE":
        body["fullUrl"] = f"{base_url}/{reference}"
        response["location"] = f"{reference}/_history/{version.version_id}"
    response["etag"] = f'W/"{version.version_id}"'
    response["lastModified"] = instant(version.last_updated)
    if prefer == "OperationOutcome" and entry.method != "GET":
        response["outcome"] = operation_outcome(
            [Issue(f"{entry.method} {reference}: {_status(outcome.status)}", severity="information")],
            default_code="informational",
        )
    body["response"] = response
    rendered = orjson.dumps(body)
    include = version.content is not None and entry.method != "HEAD" and entry.method != "DELETE"
    if include and (prefer == "representation" or entry.method == "GET"):
        assert version.content is not None
        return rendered[:-1] + b',"resource":' + version.content + b"}"
    return rendered


def _status(code: int) -> str:
    return f"{code} {HTTPStatus(code).phrase}"
