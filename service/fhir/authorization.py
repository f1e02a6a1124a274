"""Which SMART permissions a FHIR request needs, and whether a token's scopes give them.

Read from the request line alone (and, for a Bundle, from each entry's `request`), so every route is covered
by one rule, including routes added later. https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from service.errors import Forbidden, Issue
from service.fhir.access import Access, Principal
from service.fhir.registry import RESOURCES
from service.fhir.scopes import Permission, decide

# Operations that only read (or compute without storing) need read permission on their type.
_READING_OPERATIONS = {"$validate", "$everything"}
# The IPT API writes and reads a whole treatment plan: every type the plan consists of.
IPT_PLAN_TYPES = ("CarePlan", "Goal", "Condition", "CareTeam", "Patient", "Practitioner", "RelatedPerson")


@dataclass(frozen=True, slots=True)
class Need:
    resource_type: str
    permission: Permission


def needs_for_fhir(
    method: str, segments: list[str], body: Any = None, searched_types: list[str] | None = None
) -> list[Need]:
    """The permissions a request on `/fhir/<segments…>` needs; a system search names its types."""
    method = method.upper()
    if not segments:
        if method == "POST":
            return _bundle_needs(body)
        return [Need(t, "s") for t in searched_types or RESOURCES]  # system search
    if segments[0] == "_history":
        return [Need(t, "r") for t in RESOURCES]
    resource_type, rest = segments[0], segments[1:]
    if not rest:
        return [Need(resource_type, _TYPE_LEVEL.get(method, "r"))]
    if rest[0] == "_search":
        return [Need(resource_type, "s")]
    if rest[0] == "_history":
        return [Need(resource_type, "r")]
    if rest[0].startswith("$"):
        return _operation_needs(resource_type, rest[0])
    if len(rest) > 1 and rest[1].startswith("$"):
        return _operation_needs(resource_type, rest[1])
    if len(rest) > 1:
        return [Need(resource_type, "r")]  # instance history and vread
    return [Need(resource_type, _INSTANCE_LEVEL.get(method, "r"))]


def needs_for_ipt(method: str) -> list[Need]:
    permissions: tuple[Permission, ...] = ("r", "s") if method.upper() in ("GET", "HEAD") else ("c", "u")
    return [Need(t, p) for t in IPT_PLAN_TYPES for p in permissions]


_TYPE_LEVEL: dict[str, Permission] = {
    "GET": "s",
    "HEAD": "s",
    "POST": "c",
    "PUT": "u",
    "DELETE": "d",
    "PATCH": "u",
}
_INSTANCE_LEVEL: dict[str, Permission] = {"GET": "r", "HEAD": "r", "PUT": "u", "DELETE": "d", "PATCH": "u"}
_ENTRY_METHOD: dict[str, Permission] = {"POST": "c", "PUT": "u", "PATCH": "u", "DELETE": "d"}


# What an operation reads of patient data besides its own type: $populate reads the subject and its
# latest response to the form, $apply the subject it plans for.
_PATIENT_DATA_READ = {
    "$populate": (Need("Patient", "r"), Need("QuestionnaireResponse", "r")),
    "$apply": (Need("Patient", "r"),),
}


def _operation_needs(resource_type: str, operation: str) -> list[Need]:
    if operation == "$extract":
        return [Need(resource_type, "r"), Need("Observation", "c")]
    if operation in _PATIENT_DATA_READ:
        return [Need(resource_type, "r"), *_PATIENT_DATA_READ[operation]]
    if operation in _READING_OPERATIONS:
        return [Need(resource_type, "r")]
    return [Need(resource_type, "r"), Need(resource_type, "u")]


def _bundle_needs(body: Any) -> list[Need]:
    entries = body.get("entry") if isinstance(body, dict) else None
    needs: list[Need] = []
    for entry in entries if isinstance(entries, list) else []:
        request = entry.get("request") if isinstance(entry, dict) else None
        if not isinstance(request, dict):
            continue
        method = str(request.get("method", "")).upper()
        url = str(request.get("url", "")).split("?", 1)[0].strip("/")
        segments = [s for s in url.split("/") if s]
        if not segments:
            continue
        if method == "GET":
            needs.extend(needs_for_fhir("GET", segments))
        elif method in _ENTRY_METHOD:
            needs.append(Need(segments[0], _ENTRY_METHOD[method]))
    return needs


def searched_types(parameters: list[tuple[str, str]]) -> list[str]:
    """The types a system search names in `_type` (`?_type=Patient,Goal`), empty when it names none."""
    return [t for name, value in parameters if name == "_type" for t in value.split(",") if t]


def authorize(principal: Principal, needs: list[Need]) -> Access:
    """Grant every need or refuse with 403 naming the first that is missing.

    Shared content (worksheets, terminology, protocol) is readable with any valid token and writable only
    with `user/` or `system/` scopes; a `patient/` scope confines the request to the token's patient.
    """
    confined = False
    for need in needs:
        if need.resource_type == "AuditEvent":
            _authorize_audit(principal, need)
            continue
        spec = RESOURCES.get(need.resource_type)
        if spec is not None and spec.kind == "content" and need.permission in ("r", "s"):
            continue
        scopes = principal.scopes
        if spec is not None and spec.kind == "content":
            scopes = tuple(scope for scope in scopes if scope.context != "patient")
        grant = decide(scopes, need.resource_type, need.permission)
        if not grant.allowed:
            raise Forbidden(
                Issue(
                    f"the token's scopes do not allow '{need.permission}' on {need.resource_type} "
                    f"(granted: {principal.scope_text or 'none'})",
                    expression=need.resource_type,
                )
            )
        confined = confined or grant.patient_only
    # A token holding only patient/ scopes never leaves its patient's compartment, whatever the request
    # names: an operation on shared content (a worksheet's $populate) still reads patient data.
    if principal.scopes and all(scope.context == "patient" for scope in principal.scopes):
        confined = True
    if confined and not principal.patient:
        raise Forbidden(Issue("a patient/ scope needs a token with a patient in its launch context"))
    return Access(principal, patient_id=principal.patient if confined else None)


def may_read_audit(principal: Principal, permission: Permission = "s") -> bool:
    """A wildcard scope (`system/*.rs`) does not reach the audit trail: only one naming AuditEvent does,
    and only in user or system context (an audit record speaks of staff and of other patients too)."""
    return any(
        s.resource_type == "AuditEvent" and s.context != "patient" and permission in s.permissions
        for s in principal.scopes
    )


def _authorize_audit(principal: Principal, need: Need) -> None:
    """The audit trail is append-only, and readable only with a scope that names AuditEvent."""
    if need.permission not in ("r", "s"):
        raise Forbidden(Issue("AuditEvents are written by the server only", expression="AuditEvent"))
    if not may_read_audit(principal, need.permission):
        raise Forbidden(
            Issue(
                "reading the audit trail needs a user/ or system/ scope naming AuditEvent, "
                "e.g. system/AuditEvent.rs",
                expression="AuditEvent",
            )
        )
