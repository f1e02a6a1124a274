"""Which SMART permissions a FHIR request needs, and whether a token's scopes give them.

Read from the request line alone (and, for a Bundle, from each entry's `request`), so every route is covered
by one rule, including routes added later. https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from service.errors import Forbidden, Issue
from service.fhir.access import AUDIT_EVENT, Access, Principal
from service.fhir.registry import RESOURCES
from service.fhir.scopes import Permission

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

    The access returned answers, for the rest of the request, what each type may show or take
    (`Access.reach`); a need granted only within the token's patient confines the request's conditional
    criteria and reference checks to that compartment too.
    """
    access = Access(principal)
    confined = False
    for need in needs:
        reach = access.reach(need.resource_type, need.permission)
        if not reach.allowed:
            raise Forbidden(_refusal(principal, need))
        confined = confined or reach.patient is not None
    # A token holding only patient/ scopes never leaves its patient's compartment, whatever the request
    # names: an operation on shared content (a worksheet's $populate) still reads patient data.
    if principal.patient and principal.scopes and all(s.context == "patient" for s in principal.scopes):
        confined = True
    if confined:
        access.patient_id = principal.patient
    return access


def _refusal(principal: Principal, need: Need) -> Issue:
    if need.resource_type == AUDIT_EVENT:
        if need.permission not in ("r", "s"):
            return Issue("AuditEvents are written by the server only", expression=AUDIT_EVENT)
        return Issue(
            "reading the audit trail needs a user/ or system/ scope naming AuditEvent, "
            "e.g. system/AuditEvent.rs",
            expression=AUDIT_EVENT,
        )
    granted_to_patient = any(
        s.context == "patient" and s.allows(need.resource_type, need.permission) for s in principal.scopes
    )
    if granted_to_patient and not principal.patient:
        return Issue("a patient/ scope needs a token with a patient in its launch context")
    if granted_to_patient:
        reason = (
            "patient/ scopes write only resources of the patient's compartment"
            if need.permission not in ("r", "s")
            else "not within the patient's compartment"
        )
        return Issue(
            f"the token's scopes do not allow '{need.permission}' on {need.resource_type}: {reason}",
            expression=need.resource_type,
        )
    return Issue(
        f"the token's scopes do not allow '{need.permission}' on {need.resource_type} "
        f"(granted: {principal.scope_text or 'none'})",
        expression=need.resource_type,
    )
