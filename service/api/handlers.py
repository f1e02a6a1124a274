"""Every error becomes an OperationOutcome with the right status, and nothing else leaks out."""

import logging

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.logs import printable, redacted_traceback
from service.api.responses import json_response
from service.errors import FhirError, Issue, operation_outcome
from service.storage.faults import database_fault

log = logging.getLogger(__name__)

_HTTP_ISSUE_CODES = {404: "not-found", 405: "not-supported", 413: "too-costly", 415: "not-supported"}


async def fhir_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, FhirError)
    return json_response(exc.to_operation_outcome(), status_code=exc.status_code, headers=exc.headers)


async def request_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    issues = []
    for problem in exc.errors():
        location = [str(part) for part in problem.get("loc", ())]
        where = location[0] if location else "request"
        name = location[-1] if len(location) > 1 else where
        issues.append(Issue(f"{where} parameter {name!r}: {problem.get('msg', 'invalid')}", expression=name))
    return json_response(operation_outcome(issues, default_code="invalid"), status_code=400)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        message = f"no such endpoint: {request.method} {request.url.path}"
    elif exc.status_code == 405:
        message = f"{request.method} is not supported on {request.url.path}"
    else:
        message = str(exc.detail)
    outcome = operation_outcome(
        [Issue(message)], default_code=_HTTP_ISSUE_CODES.get(exc.status_code, "processing")
    )
    return json_response(outcome, status_code=exc.status_code, headers=dict(exc.headers or {}))


def _log_unexpected(method: str, path: str, exc: BaseException) -> None:
    log.error("unhandled error on %s %s\n%s", method, printable(path), redacted_traceback(exc))


def _internal_error() -> Response:
    outcome = operation_outcome([Issue("internal error; it has been logged")], default_code="exception")
    return json_response(outcome, status_code=500)


async def unexpected_error(request: Request, exc: Exception) -> Response:
    """Last resort, for an error of the middleware outside `ServerErrors` (Starlette then re-raises it to the
    server, whose log `service.api.logs.quiet_server_logs` keeps free of its message)."""
    fault = database_fault(exc)
    if fault is not None:
        return await fhir_error(request, fault)
    _log_unexpected(request.method, request.url.path, exc)
    return _internal_error()


class ServerErrors:
    """ASGI middleware, innermost: an unexpected error becomes a logged 500 OperationOutcome inside the
    middleware stack, so the audit trail records it (outcome 8) and it gets the headers of every answer.

    Starlette's own handler runs outside every middleware and re-raises the error to the server, which
    logs it again, message and all.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_noting_start(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_noting_start)
        except Exception as exc:
            fault = database_fault(exc)
            if fault is None:
                _log_unexpected(scope["method"], scope["path"], exc)
            else:
                log.warning("database fault on %s %s: %s", scope["method"], printable(scope["path"]), fault)
            # A response already under way cannot change its status; the server closes the connection.
            if not started:
                response = _internal_error() if fault is None else await fhir_error(Request(scope), fault)
                await response(scope, receive, send)


def install(app: FastAPI) -> None:
    app.add_exception_handler(FhirError, fhir_error)
    app.add_exception_handler(RequestValidationError, request_validation_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(Exception, unexpected_error)
