"""One log line per request with ids only: method, path, status, duration.

The server's own access log is switched off because it prints query strings, and a search such as
`Patient?name=…` carries PHI values; paths carry only types and ids.
"""

import logging
import time
from collections.abc import Awaitable, Callable

from fastapi import Request, Response

log = logging.getLogger("ipt_fhir.access")


async def log_requests(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    started = time.perf_counter()
    response = await call_next(request)
    elapsed_ms = (time.perf_counter() - started) * 1000
    log.info("%s %s %d %.1fms", request.method, request.url.path, response.status_code, elapsed_ms)
    return response
