"""Referential integrity of literal references (https://hl7.org/fhir/R4/references.html#literal).

Every `Reference.reference` written must be well-formed, as `mappings.references` reads it (the one reader
that compartments, search indexes and the treatment-plan mapping share): `Patient/A/Patient/B`, `Patient/`
or `Patient/a b` is refused with 422 naming the element (`CarePlan.subject`). A literal reference to a type
this server serves (`Patient/123`, `Patient/123/_history/2`) must also name an existing, not deleted
resource; otherwise the write is refused with 422 naming the element (`CarePlan.careTeam[1]`). Not checked
for existence: references to types not served here, contained `#id` references, absolute URLs, `urn:`
references outside a transaction, logical (identifier-only) references and canonical references
(`Questionnaire|1.0` is a `canonical`, not a `Reference`).

The rule is a step of the write pipeline for every served type (`service.interactions.rules`), so it runs on
every write path: create, update, conditional create/update, PATCH and each entry of a batch or transaction.
Inside a transaction the existence check is deferred (`deferred_reference_checks`) until all entries are
written, so a reference to a resource created anywhere in the same transaction counts as existing, and then
runs as one query for the whole Bundle. The existence check locks the referenced rows `FOR KEY SHARE`;
deletes lock `FOR UPDATE` before looking for referrers (`ResourceRepository.delete`), so the two cannot
interleave into a dangling reference.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from mappings.references import parse_reference
from service.errors import Issue, Unprocessable
from service.fhir.registry import RESOURCE_DEFINITIONS, RESOURCES
from service.storage.repository import RECORD_TYPES, ResourceRepository, StoredVersion

Key = tuple[str, str]


@dataclass(frozen=True, slots=True)
class LiteralReference:
    """One `Reference.reference` to a served type, with the FHIRPath of the Reference element."""

    expression: str
    target: Key


@dataclass(frozen=True, slots=True)
class MalformedReference:
    """One `Reference.reference` that is not a literal reference, with the FHIRPath of its element."""

    expression: str
    text: str
    problem: str


@dataclass(slots=True)
class FoundReferences:
    """What `find_references` found: references to served types, and malformed ones."""

    served: list[LiteralReference] = field(default_factory=list)
    malformed: list[MalformedReference] = field(default_factory=list)


def find_references(resource_type: str, content: dict[str, Any]) -> FoundReferences:
    """Every literal reference of `content` to a served type and every malformed reference, in document
    order, nested ones included."""
    found = FoundReferences()
    _collect(content, [resource_type], found)
    return found


def _collect(value: Any, path: list[str], found: FoundReferences) -> None:
    # The path is kept as parts and joined only for a reference found: most elements hold none.
    if isinstance(value, dict):
        reference = value.get("reference")
        # An Expression (1..1 `language`) has a `reference` too, but it is a uri, not a Reference's.
        if isinstance(reference, str) and "language" not in value:
            parsed = parse_reference(reference)
            if parsed.kind == "malformed":
                found.malformed.append(MalformedReference("".join(path), reference, parsed.problem or ""))
            elif (target := parsed.target) is not None and target[0] in RESOURCES:
                found.served.append(LiteralReference("".join(path), target))
        for key, item in value.items():
            if key != "reference" and isinstance(item, dict | list):
                path.append(f".{key}")
                _collect(item, path, found)
                path.pop()
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if isinstance(item, dict | list):
                path.append(f"[{index}]")
                _collect(item, path, found)
                path.pop()


@dataclass(slots=True)
class DeferredChecks:
    """The references written inside a transaction, checked together by `check_deferred`."""

    entry: str = ""
    pending: list[tuple[str, str, list[LiteralReference]]] = field(default_factory=list)


_DEFERRED: ContextVar[DeferredChecks | None] = ContextVar("deferred_reference_checks", default=None)


@asynccontextmanager
async def deferred_reference_checks() -> AsyncIterator[DeferredChecks]:
    """Collect instead of check, for the writes of one transaction (in this task only)."""
    checks = DeferredChecks()
    token = _DEFERRED.set(checks)
    try:
        yield checks
    finally:
        _DEFERRED.reset(token)


async def check_references(
    repository: ResourceRepository, resource_type: str, content: dict[str, Any], current: StoredVersion | None
) -> None:
    """The write rule: refuse (422) a malformed reference, or a literal reference to a served resource
    that does not exist."""
    found = find_references(resource_type, content)
    # Not deferred inside a transaction: whether a reference is well-formed does not depend on the other
    # entries, and the error then names the entry being written.
    _raise_malformed(found.malformed)
    own = (resource_type, content.get("id"))
    references = [r for r in found.served if r.target != own]
    if not references:
        return
    deferred = _DEFERRED.get()
    if deferred is not None:
        deferred.pending.append((deferred.entry, resource_type, references))
        return
    existing = await repository.existing(r.target for r in references)
    _raise_missing([(resource_type, r) for r in references if r.target not in existing])


async def check_deferred(repository: ResourceRepository, checks: DeferredChecks) -> None:
    """Check every reference collected in a transaction against its final state, in one query."""
    wanted = {r.target for _, _, references in checks.pending for r in references}
    if not wanted:
        return
    found = await repository.existing(wanted)
    _raise_missing(
        [
            (f"{entry}.resource" if entry else resource_type, reference)
            for entry, resource_type, references in checks.pending
            for reference in references
            if reference.target not in found
        ],
        rooted=True,
    )


def _raise_malformed(malformed: list[MalformedReference]) -> None:
    if not malformed:
        return
    raise Unprocessable(
        *(
            Issue(
                f"{m.expression}: {_quoted(m.text)} is not a valid reference; {m.problem}",
                expression=m.expression,
                code="value",
            )
            for m in malformed
        )
    )


def _quoted(text: str) -> str:
    # Quoted as written, but an outsized value is not echoed back whole.
    return repr(text if len(text) <= 100 else text[:100] + "...")


def _raise_missing(missing: list[tuple[str, LiteralReference]], *, rooted: bool = False) -> None:
    if not missing:
        return
    issues = []
    for root, reference in missing:
        kind, key = reference.target
        expression = reference.expression
        if rooted:
            # `CarePlan.subject` inside entry 3 becomes `Bundle.entry[3].resource.subject`.
            expression = root + expression[expression.index(".") :] if "." in expression else root
        issues.append(
            Issue(
                f"{expression} refers to {kind}/{key}, which does not exist here (or was deleted)",
                expression=expression,
                code="not-found",
            )
        )
    raise Unprocessable(*issues)


# An audit record may name what no longer exists (a read of a deleted resource), so it is not checked.
CHECKED_TYPES = tuple(d.name for d in RESOURCE_DEFINITIONS if d.name not in RECORD_TYPES)
