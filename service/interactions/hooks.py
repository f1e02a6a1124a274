"""Business rules that run inside a write's transaction, before anything is stored, and hooks after it.

A rule gets the repository (to look things up in the same transaction), the resource type, the incoming
content and the current version (for an update), and raises a `FhirError` to refuse the write.

An after-write hook gets the repository, the version just written and the version it replaced, still inside
the write's transaction, so that resources derived from the write (an Observation extracted from a completed
QuestionnaireResponse) are committed or rolled back together with it. It runs only when a new version was
written, not for an update that changed nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from service.storage.repository import ResourceRepository, StoredVersion

WriteRule = Callable[[ResourceRepository, str, dict[str, Any], StoredVersion | None], Awaitable[None]]

AfterWrite = Callable[[ResourceRepository, StoredVersion, StoredVersion | None], Awaitable[None]]

_RULES: dict[str, list[WriteRule]] = {}
_AFTER_WRITE: dict[str, list[AfterWrite]] = {}


def register_write_rule(resource_type: str, rule: WriteRule) -> None:
    _RULES.setdefault(resource_type, []).append(rule)


async def run_write_rules(
    repository: ResourceRepository, resource_type: str, content: dict[str, Any], current: StoredVersion | None
) -> None:
    for rule in _RULES.get(resource_type, ()):
        await rule(repository, resource_type, content, current)


def register_after_write(resource_type: str, hook: AfterWrite) -> None:
    _AFTER_WRITE.setdefault(resource_type, []).append(hook)


async def run_after_write(
    repository: ResourceRepository, written: StoredVersion, previous: StoredVersion | None
) -> None:
    if not written.changed:
        return
    for hook in _AFTER_WRITE.get(written.resource_type, ()):
        await hook(repository, written, previous)
