"""Who is asking, and what of each resource type they may see or write: the one access decision.

The API layer verifies the bearer token and sets the access of the current request here; interactions and
storage ask it, for every resource that leaves the server or that a query looks at, whether the token's
scopes reach that type for that interaction, and within which patient's compartment
(https://hl7.org/fhir/R4/compartmentdefinition-patient.html). Outside a request (the CLI, content loading,
tests of the storage layer) there is no access set, which means no restriction.

The rules (docs/security.md, "Who sees what"):
- the audit trail is reached only by a `user/` or `system/` scope that names AuditEvent, and only to read;
- shared content (worksheets, terminology, protocol) is readable with any valid token and written only
  through `user/` or `system/` scopes;
- a `user/` or `system/` scope reaches every resource of its type;
- a `patient/` scope reaches, of the types of the patient compartment, only the resources of the token's
  patient (none without a `patient` claim); of the types outside any compartment (Practitioner,
  PractitionerRole) it grants reading at most, never a write;
- anything else, including an unknown or malformed scope, reaches nothing.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from dataclasses import dataclass, field

from service.errors import Issue, Withheld
from service.fhir.registry import RESOURCES
from service.fhir.scopes import Permission, Scope

_log = logging.getLogger(__name__)
AUDIT_EVENT = "AuditEvent"
_READING = frozenset({"r", "s"})


@dataclass(frozen=True, slots=True)
class Principal:
    subject: str
    client_id: str | None
    scopes: tuple[Scope, ...]
    patient: str | None = None
    scope_text: str = ""
    # The token's `exp` (seconds since the epoch): its claims are not reused past it.
    expires_at: float = 0.0


@dataclass(frozen=True, slots=True)
class Reach:
    """Whether a token reaches a type for one interaction, and if so whether only within one patient."""

    allowed: bool
    patient: str | None = None

    def admits(self, patient_id: str | None) -> bool:
        """May a resource stored in `patient_id`'s compartment (None: no compartment) be touched?"""
        return self.allowed and (self.patient is None or patient_id == self.patient)


EVERYWHERE = Reach(allowed=True)
NOWHERE = Reach(allowed=False)


def confined_type(resource_type: str) -> bool:
    """Is `resource_type` one of the patient compartment's (a Patient, or a type with a compartment
    element)?"""
    spec = RESOURCES.get(resource_type)
    return resource_type == "Patient" or (spec is not None and bool(spec.compartment))


def reach_of(principal: Principal, resource_type: str, permission: Permission) -> Reach:
    """The rules of the module docstring, for one type and one permission."""
    scopes = principal.scopes
    if resource_type == AUDIT_EVENT:
        named = any(
            s.resource_type == AUDIT_EVENT and s.context != "patient" and permission in s.permissions
            for s in scopes
        )
        return EVERYWHERE if named and permission in _READING else NOWHERE
    spec = RESOURCES.get(resource_type)
    if spec is not None and spec.kind == "content" and permission in _READING:
        return EVERYWHERE
    matching = [scope for scope in scopes if scope.allows(resource_type, permission)]
    if any(scope.context != "patient" for scope in matching):
        return EVERYWHERE
    if not matching:
        return NOWHERE
    # Only patient/ scopes grant it.
    if spec is not None and spec.kind == "content":
        return NOWHERE
    if not confined_type(resource_type):
        return EVERYWHERE if permission in _READING else NOWHERE
    return Reach(allowed=True, patient=principal.patient) if principal.patient else NOWHERE


@dataclass(slots=True)
class Access:
    principal: Principal
    # Set when the request acts within this patient's compartment: conditional criteria and reference
    # checks then see only that compartment, as the request's own reads do.
    patient_id: str | None = None
    _reaches: dict[tuple[str, str], Reach] = field(default_factory=dict, repr=False)

    def reach(self, resource_type: str, permission: Permission) -> Reach:
        key = (resource_type, permission)
        found = self._reaches.get(key)
        if found is None:
            found = self._reaches[key] = reach_of(self.principal, resource_type, permission)
        return found


_current: ContextVar[Access | None] = ContextVar("ipt_fhir_access", default=None)


def set_access(access: Access | None) -> None:
    _current.set(access)


def current_access() -> Access | None:
    return _current.get()


def current_reach(resource_type: str, permission: Permission) -> Reach:
    """The current request's reach of a type; everywhere outside a request."""
    access = _current.get()
    return EVERYWHERE if access is None else access.reach(resource_type, permission)


def compartment_restriction() -> str | None:
    """The patient id the current request acts within, or `None` when it is not confined."""
    access = _current.get()
    return access.patient_id if access is not None else None


def ensure_may_send(resource_type: str, patient_id: str | None, permission: Permission) -> None:
    """The last check on the way out: refuse to send a resource the decision does not allow.

    Every query already applies the decision, so this should never fire; it is a second wall, not the
    first, and it names nothing of the resource withheld.
    """
    access = _current.get()
    if access is None:
        return
    confined_elsewhere = (
        access.patient_id is not None and confined_type(resource_type) and patient_id != access.patient_id
    )
    if confined_elsewhere or not access.reach(resource_type, permission).admits(patient_id):
        _log.error("withheld a %s the access decision does not allow", resource_type)
        raise Withheld(Issue("the response was withheld: it held a resource this token may not see"))
