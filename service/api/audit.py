"""Every request that touches clinical data leaves an AuditEvent: reads, searches, writes, and refusals.

https://hl7.org/fhir/R4/auditevent.html. The middleware sets the request's `AuditContext` before the request
runs. A write records the request's AuditEvent in its own transaction (`service.storage.repository`), so a
successful write has its record committed with it and needs nothing more here. Every other request (a read,
a search, a refusal, a failure, a write that rolled back) has its AuditEvent built once the response status
is known and handed to the `AuditBuffer`, which writes the events of many requests at once, within an
interval; if that write fails, the failure is logged (with ids only) and the events stay pending.
"""

import asyncio
import functools
import logging
from collections import deque
from contextlib import suppress
from contextvars import Context
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.dispatch import request_match
from service.api.logs import printable, redacted_traceback
from service.fhir.access import AUDIT_EVENT
from service.fhir.audit import AuditContext, reset_audit_context, set_audit_context
from service.fhir.authorization import needs_for
from service.fhir.endpoints import Endpoint, Matched, NotAllowed
from service.fhir.registry import RESOURCES
from service.interactions.audit import write_audit_events
from service.storage.repository import new_id

log = logging.getLogger(__name__)


def _touches_clinical_data(types: set[str]) -> bool:
    for name in types:
        spec = RESOURCES.get(name)
        if spec is None or spec.kind == "clinical" or spec.compartment or name == "Patient":
            return True
    return False


@functools.cache
def _reaches_clinical_data(endpoint: Endpoint) -> bool:
    """Whether what the entry needs reaches clinical data (a Bundle's entries are not known here: it does)."""
    return _touches_clinical_data({need.resource_type for need in needs_for(endpoint)} or {"Bundle"})


# Parameters that make a search of shared content bring or weigh other resources: such a request may
# return or probe clinical data, so it is recorded like one.
_REACHING_PARAMETERS = ("_include", "_revinclude", "_has")


def _follows_references(matched: Matched, request: Request) -> bool:
    # A POSTed search carries its parameters in the body, unread here: record it whatever they are.
    if matched.endpoint.interaction == "search-type" and matched.endpoint.method == "POST":
        return True
    return any(name.startswith(_REACHING_PARAMETERS) or "." in name for name in request.query_params)


def _entities(found: Matched | NotAllowed | None, location: str) -> list[str]:
    if isinstance(found, Matched) and found.resource_id is not None:
        return [f"{found.endpoint.resource_type}/{found.resource_id}"]
    if "/_history/" in location:
        parts = location.split("/_history/", 1)[0].rsplit("/", 2)
        return [f"{parts[-2]}/{parts[-1]}"]
    return []


class AuditTrail:
    """ASGI middleware that gives an audited request its `AuditContext` and, once the response status is
    known, hands its AuditEvent to the buffer unless a write already committed it with a successful answer
    and the request read nothing besides (a Bundle's reading entries are named by this event).

    Plain ASGI rather than Starlette's `BaseHTTPMiddleware`, which costs a task group and a memory stream
    per request.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(("/fhir", "/ipt")):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        found: Matched | NotAllowed | None = None
        try:
            found = request_match(scope)
            context = _context(request, found)
        except Exception as exc:
            # Not a reason to answer without a record: the request is recorded with what its path says.
            log.error(
                "could not tell how to audit %s %s\n%s",
                scope["method"],
                printable(path),
                redacted_traceback(exc),
            )
            interaction = found.endpoint.interaction if isinstance(found, Matched) else None
            context = AuditContext(
                method=scope["method"], path=path, interaction=interaction, query="", address=None
            )
        if context is None:
            await self.app(scope, receive, send)
            return

        async def send_once_audited(message: Message) -> None:
            if message["type"] == "http.response.start":
                status: int = message["status"]
                if not (context.recorded and status < 400) or context.read:
                    try:
                        location = Headers(raw=message.get("headers", [])).get("location", "")
                        principal = getattr(request.state, "principal", None)
                        entities = [*_entities(found, location), *context.read]
                        buffer: AuditBuffer = request.app.state.audit_buffer
                        buffer.add(context.event(status=status, principal=principal, entities=entities))
                    except Exception as exc:
                        log.error(
                            "could not record the AuditEvent of %s %s\n%s",
                            scope["method"],
                            printable(path),
                            redacted_traceback(exc),
                        )
            await send(message)

        token = set_audit_context(context)
        try:
            await self.app(scope, receive, send_once_audited)
        finally:
            reset_audit_context(token)


def _context(request: Request, found: Matched | NotAllowed | None) -> AuditContext | None:
    """The request's AuditContext, or None for a request that is not audited: the CapabilityStatement, the
    audit trail itself, and reads of shared content that reach no clinical data. A request that matches no
    endpoint is recorded, as a probe."""
    interaction: str | None = None
    if isinstance(found, Matched):
        endpoint = found.endpoint
        if endpoint.public or endpoint.resource_type == AUDIT_EVENT:
            return None
        interaction = endpoint.interaction
        if not _reaches_clinical_data(endpoint) and not _follows_references(found, request):
            return None
    return AuditContext(
        method=request.method,
        path=request.url.path,
        interaction=interaction,
        query=request.url.query,
        address=request.client.host if request.client else None,
    )


# While the database refuses the events, attempts are spaced out up to this (each one logs).
_LONGEST_RETRY_DELAY = 5.0


class AuditBuffer:
    """The AuditEvents of reads, searches, refusals and failures, held in memory and written in batches.

    Written every `interval` seconds, or as soon as `batch` are pending, all pending in one transaction (one
    COPY per table); `flush` writes them at once, and `close` (on a graceful shutdown) writes what is left.
    A crash loses the events of the last interval at most (docs/security.md, Audit trail).

    Bounded: while the database does not take them, the events stay pending (and are tried again) up to
    `capacity`; beyond, the oldest are dropped and their ids logged as lost. A database outage then costs
    memory up to a bound and lost records beyond it, but never stalls or fails a request.
    """

    def __init__(self, engine: AsyncEngine, *, interval: float, batch: int, capacity: int) -> None:
        self._engine = engine
        self.interval = interval
        self.batch = batch
        self.capacity = capacity
        self._pending: deque[tuple[str, dict[str, Any]]] = deque()
        self._lost: list[str] = []
        self._due = asyncio.Event()
        self._writing = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._failing = False

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, event: dict[str, Any]) -> None:
        """Hold `event` until the next write; never waits."""
        if len(self._pending) >= self.capacity:
            self._lost.append(self._pending.popleft()[0])
        # The id is given now, so that a log line can name an event that never reached the database.
        self._pending.append((new_id(), event))
        if len(self._pending) >= self.batch:
            self._due.set()

    def start(self) -> None:
        """Start writing every `interval`; from the application's lifespan, outside any request."""
        self._task = asyncio.create_task(self._run(), name="audit buffer")

    async def _run(self) -> None:
        delay = self.interval
        while not self._closing:
            with suppress(TimeoutError):
                await asyncio.wait_for(self._due.wait(), delay)
            self._due.clear()
            # What is pending now, once: the events that arrive meanwhile wait for the next interval (or
            # batch), so that under load the writes stay a few per second rather than back to back.
            async with self._writing:
                written = await self._write_pending()
            delay = self.interval if written else min(max(2 * delay, self.interval), _LONGEST_RETRY_DELAY)

    async def flush(self) -> bool:
        """Write every pending event now (after a write in progress, if any); False if the database did not
        take them, in which case they stay pending."""
        async with self._writing:
            while self._pending or self._lost:
                if not await self._write_pending():
                    return False
            return True

    async def _write_pending(self) -> bool:
        """Write the events pending now in one transaction; the caller holds `_writing`."""
        self._report_lost()
        if not self._pending:
            return True
        batch = list(self._pending)
        self._pending.clear()
        try:
            # In a context of its own: whatever request context the caller has (a test awaits `flush` on
            # the task that served its requests) does not reach the write.
            await asyncio.create_task(
                write_audit_events(self._engine, batch, again=self._failing), context=Context()
            )
        except Exception as exc:
            self._restore(batch)
            self._report_failure(batch, exc)
            return False
        except BaseException:
            self._restore(batch)
            raise
        self._failing = False
        return True

    async def close(self) -> None:
        """Stop the periodic writes and write what is pending: a graceful shutdown loses nothing."""
        self._closing = True
        self._due.set()
        if self._task is not None:
            await self._task
        if not await self.flush():
            log.error(
                "%d AuditEvents are lost: the database did not take them before shutdown (ids %s)",
                len(self._pending),
                ", ".join(event_id for event_id, _ in self._pending),
            )

    def _restore(self, batch: list[tuple[str, dict[str, Any]]]) -> None:
        self._pending.extendleft(reversed(batch))
        while len(self._pending) > self.capacity:
            self._lost.append(self._pending.popleft()[0])

    def _report_failure(self, batch: list[tuple[str, dict[str, Any]]], exc: Exception) -> None:
        if self._failing:
            log.error("still cannot write the %d pending AuditEvents", len(batch))
        else:
            log.error(
                "could not write %d AuditEvents (ids %s); they stay pending\n%s",
                len(batch),
                ", ".join(event_id for event_id, _ in batch),
                redacted_traceback(exc),
            )
        self._failing = True

    def _report_lost(self) -> None:
        if self._lost:
            log.error(
                "%d AuditEvents are lost: more than %d were pending while the database did not take them "
                "(ids %s)",
                len(self._lost),
                self.capacity,
                ", ".join(self._lost),
            )
            self._lost.clear()
