"""What may reach a log line: request paths with their control characters escaped, and exceptions as their
types and frames only.

The message of a database error carries the statement, its bound values and, for a value PostgreSQL
refused, a copy of the data (`CONTEXT: JSON data, line 1: {"resourceType":"Patient","name":…`): clinical
content. The engine hides bound values (`hide_parameters`), and every exception this service logs, or lets
the server log, is reduced to where it happened.
"""

from __future__ import annotations

import logging
import re
import traceback

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """`text` with control characters escaped (`\\x00`, `\\n`), so that a path cannot forge log lines."""
    return _CONTROL.sub(lambda match: match.group().encode("unicode_escape").decode("ascii"), text)


def redacted_traceback(exc: BaseException) -> str:
    """The chain of `exc` (causes first, as Python prints it) with every message left out: each exception's
    type, its SQLSTATE when it has one, and the frames it went through."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and not any(current is seen for seen in chain):
        chain.append(current)
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    parts = []
    for error in reversed(chain):
        kind = type(error)
        name = f"{kind.__module__}.{kind.__qualname__}"
        if isinstance(state := getattr(error, "sqlstate", None), str):
            name += f" (SQLSTATE {state})"
        frames = "".join(traceback.StackSummary.extract(traceback.walk_tb(error.__traceback__)).format())
        parts.append(f"Traceback (most recent call last):\n{frames}{name}: <message withheld>")
    return "\nThe above led to:\n".join(parts)


class WithholdExceptionMessages(logging.Filter):
    """Rewrites a record carrying an exception to carry its redacted traceback instead.

    For the server's own logger, which logs an exception that escaped the application with its message.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            record.msg = f"{record.getMessage()}\n{redacted_traceback(record.exc_info[1])}"
            record.args = None
            record.exc_info = None
            record.exc_text = None
        return True


class DropAll(logging.Filter):
    """For the server's access log, whose lines hold query strings (`Patient?name=…`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return False


def quiet_server_logs() -> None:
    """Keep PHI out of the logs of the ASGI server (uvicorn), however it was started: its access log is
    dropped (`service.api.access_log` writes one by path) and exceptions it logs lose their messages."""
    for name, kind in (("uvicorn.error", WithholdExceptionMessages), ("uvicorn.access", DropAll)):
        logger = logging.getLogger(name)
        if not any(isinstance(existing, kind) for existing in logger.filters):
            logger.addFilter(kind())
