"""Every request that touches clinical data leaves an AuditEvent: reads, searches, writes, and refusals.

https://hl7.org/fhir/R4/auditevent.html. The event is written after the response is decided and before it
is sent, so a client never sees an answer whose access went unrecorded; if the audit write itself fails,
the failure is logged (with ids only) and the answer still goes out.
"""

import logging
from collections.abc import Awaitable, Callable

from fastapi import Request, Response

from service.fhir.audit import audit_event
from service.fhir.authorization import IPT_PLAN_TYPES, needs_for_fhir
from service.fhir.registry import RESOURCES
from service.interactions.audit import record_audit_event

log = logging.getLogger(__name__)

_UNAUDITED = ("/fhir/metadata", "/fhir/AuditEvent")


def _touches_clinical_data(types: set[str]) -> bool:
    for name in types:
        spec = RESOURCES.get(name)
        if spec is None or spec.kind == "clinical" or spec.compartment or name == "Patient":
            return True
    return False


def _entities(segments: list[str], response: Response) -> list[str]:
    if len(segments) >= 2 and not segments[1].startswith(("_", "$")):
        return [f"{segments[0]}/{segments[1]}"]
    location = response.headers.get("location", "")
    if "/_history/" in location:
        parts = location.split("/_history/", 1)[0].rsplit("/", 2)
        return [f"{parts[-2]}/{parts[-1]}"]
    return []


async def audit_requests(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    path = request.url.path
    response = await call_next(request)
    if not path.startswith(("/fhir", "/ipt")) or path.startswith(_UNAUDITED):
        return response
    if path.startswith("/ipt"):
        parts = [p for p in path[len("/ipt") :].split("/") if p]
        segments = ["CarePlan", *parts[1:]] if parts else ["CarePlan"]
        types = set(IPT_PLAN_TYPES)
    else:
        segments = [p for p in path[len("/fhir") :].split("/") if p]
        types = {need.resource_type for need in needs_for_fhir(request.method, segments)} or {"Bundle"}
    if not _touches_clinical_data(types):
        return response
    event = audit_event(
        method=request.method,
        path=path,
        segments=segments,
        query=request.url.query,
        status=response.status_code,
        principal=getattr(request.state, "principal", None),
        address=request.client.host if request.client else None,
        entities=_entities(segments, response),
    )
    try:
        await record_audit_event(request.app.state.engine, event)
    except Exception:
        log.exception("could not record the AuditEvent of %s %s", request.method, path)
    return response
