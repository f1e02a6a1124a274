"""Which SMART permissions a FHIR request needs, and whether a token's scopes give them.

Read from the request's entry in the endpoint table (and, for a Bundle, from each entry's `request`, found in
the same table), so every route is covered by one rule, including routes added later. https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from service.errors import Forbidden, Issue
from service.fhir.access import AUDIT_EVENT, Access, Principal
from service.fhir.endpoints import Endpoint, Matched, match
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


def needs_for(endpoint: Endpoint, *, body: Any = None, searched_types: list[str] | None = None) -> list[Need]:
    """The permissions a request matched to `endpoint` needs; a Bundle's depend on its entries, a system
    search's on the types it names, every other entry's on the entry alone."""
    if endpoint.api == "fhir" and endpoint.interaction == "transaction":
        return _bundle_needs(body)
    if endpoint.api == "fhir" and endpoint.interaction == "search-system":
        return [Need(t, "s") for t in searched_types or RESOURCES]
    return list(_entry_needs(endpoint))


@functools.cache
def _entry_needs(endpoint: Endpoint) -> tuple[Need, ...]:
    """What an entry needs whatever the request carries: worked out once per entry, not per request."""
    if endpoint.api == "ipt":
        reading = endpoint.method in ("GET", "HEAD")
        permissions: tuple[Permission, ...] = ("r", "s") if reading else ("c", "u")
        return tuple(Need(t, p) for t in IPT_PLAN_TYPES for p in permissions)
    interaction = endpoint.interaction
    if interaction == "capabilities":
        return ()
    if interaction == "history-system":
        return tuple(Need(t, "r") for t in RESOURCES)
    if endpoint.resource_type is None:
        raise ValueError(f"{endpoint.method} {endpoint.path}: no rule says what it needs")
    if endpoint.operation_code is not None:
        return tuple(_operation_needs(endpoint.resource_type, endpoint.operation_code))
    return (Need(endpoint.resource_type, _INTERACTION_PERMISSION[interaction]),)


_INTERACTION_PERMISSION: dict[str, Permission] = {
    "read": "r",
    "vread": "r",
    "history-instance": "r",
    "history-type": "r",
    "search-type": "s",
    "create": "c",
    "update": "u",
    "patch": "u",
    "delete": "d",
}
_ENTRY_METHOD: dict[str, Permission] = {
    "GET": "r",
    "HEAD": "r",
    "POST": "c",
    "PUT": "u",
    "PATCH": "u",
    "DELETE": "d",
}


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
    """What each entry's request needs, found in the same table as a request's; an entry the table does not
    know needs what its method does on the type it names (the transaction then refuses it)."""
    entries = body.get("entry") if isinstance(body, dict) else None
    needs: list[Need] = []
    for entry in entries if isinstance(entries, list) else []:
        request = entry.get("request") if isinstance(entry, dict) else None
        if not isinstance(request, dict):
            continue
        method = str(request.get("method", "")).upper()
        if method not in _ENTRY_METHOD:
            continue
        path = "/" + str(request.get("url", "")).split("?", 1)[0].strip("/")
        segments = [s for s in path.split("/") if s]
        if not segments:
            continue
        # A HEAD entry is answered as its GET would be, without the body: it needs what the GET needs.
        found = match("GET" if method == "HEAD" else method, "/fhir/" + "/".join(segments))
        if isinstance(found, Matched) and found.endpoint.resource_type is not None:
            needs.extend(needs_for(found.endpoint))
        else:
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
