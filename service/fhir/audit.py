"""The AuditEvent recorded for a request (https://hl7.org/fhir/R4/auditevent.html).

Built from the request line, the outcome and who asked; never from the bodies, so the audit trail itself
holds no clinical content beyond the references of the resources touched (and a search's query string,
which the spec keeps in `entity.query`).

The API layer sets the `AuditContext` of every audited request; a write of the request records the
request's AuditEvent in the write's own transaction from it (`service.storage.repository`), and the API layer
records the others (reads, searches, refusals, failures) once the response status is known.
"""

from __future__ import annotations

import base64
import re
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from service.fhir.access import Principal

_REST = {
    "system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
    "code": "rest",
    "display": "RESTful Operation",
}
_INTERACTION_SYSTEM = "http://hl7.org/fhir/restful-interaction"
_ACTION = {"GET": "R", "HEAD": "R", "POST": "C", "PUT": "U", "PATCH": "U", "DELETE": "D"}
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _text(value: str) -> str:
    """`value` as text any AuditEvent can store: control characters escaped (`\\x00`; PostgreSQL stores no
    NUL) and lone surrogates (which a token's JSON may carry) too, so that a refused request's path or an
    odd claim never costs the request its record."""
    value = value.encode("utf-8", "backslashreplace").decode("utf-8")
    return _CONTROL.sub(lambda match: match.group().encode("unicode_escape").decode("ascii"), value)


def audit_event(
    *,
    method: str,
    path: str,
    interaction: str | None,
    query: str,
    status: int,
    principal: Principal | None,
    address: str | None,
    entities: list[str],
    recorded: datetime | None = None,
) -> dict[str, Any]:
    """An AuditEvent for one request; `interaction` is the restful-interaction code of the endpoint it
    matched (None for a request that matched none), `entities` are the `Type/id` references it touched.

    Everything but the query (kept in base64) comes from the request as sent or from the token, so each
    text goes through `_text`."""
    outcome = "0" if status < 400 else ("4" if status < 500 else "8")
    agent: dict[str, Any] = {
        "type": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/extra-security-role-type",
                    "code": "humanuser" if principal and principal.patient else "datacollector",
                }
            ]
        },
        "requestor": True,
        "who": {"identifier": {"value": _text(principal.subject) if principal else "anonymous"}},
    }
    if principal is not None and principal.client_id:
        agent["altId"] = _text(principal.client_id)
    if principal is not None and principal.scope_text:
        agent["policy"] = [_text(scope) for scope in principal.scope_text.split()]
    if address:
        agent["network"] = {"address": _text(address), "type": "2"}
    entity: list[dict[str, Any]] = [{"what": {"reference": _text(reference)}} for reference in entities]
    # The path is kept with a search's query, and for a request that matched no endpoint (a probe), which
    # names nothing else.
    if query or interaction is None:
        requested: dict[str, Any] = {
            "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2"},
            "description": _text(path),
        }
        if query:
            requested["query"] = base64.b64encode(query.encode()).decode()
        entity.append(requested)
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "type": _REST,
        "action": "E" if interaction in ("operation", "transaction") else _ACTION.get(method.upper(), "E"),
        "recorded": (recorded or datetime.now(UTC)).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "outcome": outcome,
        "outcomeDesc": f"HTTP {status}",
        "agent": [agent],
        "source": {
            "observer": {"display": "ipt-fhir"},
            "type": [{"system": "http://terminology.hl7.org/CodeSystem/security-source-type", "code": "4"}],
        },
    }
    if interaction is not None:
        event["subtype"] = [{"system": _INTERACTION_SYSTEM, "code": interaction}]
    if entity:
        event["entity"] = entity
    return event


@dataclass(slots=True)
class AuditContext:
    """An audited request, as its AuditEvent needs it: everything but the outcome and what it touched."""

    method: str
    path: str
    # The restful-interaction code of the endpoint the request matched; None when it matched none.
    interaction: str | None
    query: str
    address: str | None
    # Set when a transaction of the request commits the request's AuditEvent with its writes: a successful
    # answer then needs no other record, unless the request also read resources (`read`).
    recorded: bool = False
    # What a Bundle's reading entries returned (`Type/id`), named by the request's own event: the write
    # events name only what was written.
    read: dict[str, None] = field(default_factory=dict)

    def event(self, *, status: int, principal: Principal | None, entities: list[str]) -> dict[str, Any]:
        return audit_event(
            method=self.method,
            path=self.path,
            interaction=self.interaction,
            query=self.query,
            status=status,
            principal=principal,
            address=self.address,
            entities=entities,
        )

    def write_status(self, *, created: bool) -> int:
        """The status a successful write of this request answers: 201 for a create (a PUT that creates
        too), 204 for a delete, 200 for any other (an update, a PATCH, a Bundle, an operation)."""
        if self.interaction == "delete":
            return 204
        return 201 if created and self.interaction in ("create", "update") else 200


_current: ContextVar[AuditContext | None] = ContextVar("ipt_fhir_audit", default=None)


def set_audit_context(context: AuditContext) -> Token[AuditContext | None]:
    return _current.set(context)


def reset_audit_context(token: Token[AuditContext | None]) -> None:
    _current.reset(token)


def current_audit_context() -> AuditContext | None:
    """The audited request being served; `None` outside one (content loading, the CLI, the audit buffer,
    a request that is not audited)."""
    return _current.get()


def note_read(reference: str) -> None:
    """Name `reference` (`Type/id`) in the current request's AuditEvent, as one of the resources it read."""
    context = _current.get()
    if context is not None:
        context.read[reference] = None
