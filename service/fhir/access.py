"""Who is asking, for the code below the HTTP layer.

The API layer verifies the bearer token and sets the access of the current request here; interactions and
storage read it to keep a patient-context token inside its patient's compartment
(https://hl7.org/fhir/R4/compartmentdefinition-patient.html). Outside a request (the CLI, content loading,
tests of the storage layer) there is no access set, which means no restriction.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

from service.fhir.scopes import Scope


@dataclass(frozen=True, slots=True)
class Principal:
    subject: str
    client_id: str | None
    scopes: tuple[Scope, ...]
    patient: str | None = None
    scope_text: str = ""


@dataclass(frozen=True, slots=True)
class Access:
    principal: Principal
    # Set when the request is allowed only within this patient's compartment.
    patient_id: str | None = None


_current: ContextVar[Access | None] = ContextVar("ipt_fhir_access", default=None)


def set_access(access: Access | None) -> None:
    _current.set(access)


def current_access() -> Access | None:
    return _current.get()


def compartment_restriction() -> str | None:
    """The patient id the current request is confined to, or `None` when it is not confined."""
    access = _current.get()
    return access.patient_id if access is not None else None
