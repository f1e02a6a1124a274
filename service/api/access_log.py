"""One log line per request with ids only: method, path, status, duration.

The server's own access log is switched off because it prints query strings, and a search such as
`Patient?name=…` carries PHI values; paths carry only types and ids.
"""

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.logs import printable

log = logging.getLogger("ipt_fhir.access")


class AccessLog:
    """ASGI middleware: the log line of each request, once its response has gone out."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            elapsed_ms = (time.perf_counter() - started) * 1000
            log.info("%s %s %d %.1fms", scope["method"], printable(scope["path"]), status, elapsed_ms)
