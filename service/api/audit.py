"""Every request that touches clinical data leaves an AuditEvent: reads, searches, writes, and refusals.

https://hl7.org/fhir/R4/auditevent.html. The event is written after the response is decided and before it
is sent, so a client never sees an answer whose access went unrecorded; if the audit write itself fails,
the failure is logged (with ids only) and the answer still goes out.
"""

import logging

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.logs import printable, redacted_traceback
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


# Parameters that make a search of shared content bring or weigh other resources: such a request may
# return or probe clinical data, so it is recorded like one.
_REACHING_PARAMETERS = ("_include", "_revinclude", "_has")


def _follows_references(request: Request) -> bool:
    # A POSTed search carries its parameters in the body, unread here: record it whatever they are.
    if request.url.path.endswith("/_search"):
        return True
    return any(name.startswith(_REACHING_PARAMETERS) or "." in name for name in request.query_params)


def _entities(segments: list[str], location: str) -> list[str]:
    if len(segments) >= 2 and not segments[1].startswith(("_", "$")):
        return [f"{segments[0]}/{segments[1]}"]
    if "/_history/" in location:
        parts = location.split("/_history/", 1)[0].rsplit("/", 2)
        return [f"{parts[-2]}/{parts[-1]}"]
    return []


class AuditTrail:
    """ASGI middleware that writes the AuditEvent of a request once its response status is known, before
    the response goes out.

    Plain ASGI rather than Starlette's `BaseHTTPMiddleware`, which costs a task group and a memory stream
    per request.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(("/fhir", "/ipt")) or path.startswith(_UNAUDITED):
            await self.app(scope, receive, send)
            return

        async def send_once_audited(message: Message) -> None:
            if message["type"] == "http.response.start":
                try:
                    await _audit(Request(scope), message["status"], Headers(raw=message.get("headers", [])))
                except Exception as exc:
                    log.error(
                        "could not record the AuditEvent of %s %s\n%s",
                        scope["method"],
                        printable(path),
                        redacted_traceback(exc),
                    )
            await send(message)

        await self.app(scope, receive, send_once_audited)


async def _audit(request: Request, status: int, headers: Headers) -> None:
    path = request.url.path
    if path.startswith("/ipt"):
        parts = [p for p in path[len("/ipt") :].split("/") if p]
        segments = ["CarePlan", *parts[1:]] if parts else ["CarePlan"]
        types = set(IPT_PLAN_TYPES)
    else:
        segments = [p for p in path[len("/fhir") :].split("/") if p]
        types = {need.resource_type for need in needs_for_fhir(request.method, segments)} or {"Bundle"}
    if not _touches_clinical_data(types) and not _follows_references(request):
        return
    event = audit_event(
        method=request.method,
        path=path,
        segments=segments,
        query=request.url.query,
        status=status,
        principal=getattr(request.state, "principal", None),
        address=request.client.host if request.client else None,
        entities=_entities(segments, headers.get("location", "")),
    )
    await record_audit_event(request.app.state.engine, event)
