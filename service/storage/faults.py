"""Database errors that are not bugs, as the client's answer: a 503 with `Retry-After` when the database is
away or overloaded, a 409 when a concurrent writer got there first.

https://www.postgresql.org/docs/current/errcodes-appendix.html. Anything else stays an unexpected error (a
500, logged), since a client cannot cause it through any input the service accepts.
"""

from __future__ import annotations

import asyncio

from asyncpg.exceptions import ConnectionDoesNotExistError
from sqlalchemy import exc as sa_exc

from service.errors import Conflict, FhirError, Issue, ServiceUnavailable

RETRY_AFTER_SECONDS = 5

# Refused, reset or lost connections, and a pool or connect that timed out.
_UNREACHABLE = (OSError, asyncio.TimeoutError, sa_exc.TimeoutError, ConnectionDoesNotExistError)
# Connection exceptions, insufficient resources, operator intervention (shutdown, starting up).
_UNAVAILABLE_CLASSES = ("08", "53", "57P")
_CONFLICTS = {
    "23505": "another request wrote a resource with the same identity at the same time; read it and retry",
    "40001": "a concurrent write conflicted with this one; retry it",
    "40P01": "a concurrent write conflicted with this one; retry it",
}


def _sqlstate(error: BaseException) -> str | None:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        for candidate in (current, getattr(current, "orig", None)):
            code = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
            if isinstance(code, str):
                return code
        current = current.__cause__ or current.__context__
    return None


def _unreachable(error: BaseException) -> bool:
    """The database could not be reached at all: refused, reset, timed out or the pool ran dry."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, _UNREACHABLE):
            return True
        current = current.__cause__ or current.__context__
    return False


def database_fault(error: BaseException) -> FhirError | None:
    """The answer a database error deserves, or None for one that is a bug."""
    code = _sqlstate(error)
    if code in _CONFLICTS:
        return Conflict(Issue(_CONFLICTS[code]))
    if (code is not None and code.startswith(_UNAVAILABLE_CLASSES)) or (code is None and _unreachable(error)):
        return ServiceUnavailable(
            Issue("the database is not available; retry later"),
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    return None
