"""Business rules that run inside a write's transaction, before anything is stored, and hooks after it.

A rule gets the repository (to look things up in the same transaction), the resource type, the incoming
content and the current version (for an update), and raises a `FhirError` to refuse the write.

An after-write hook gets the repository and the writes of one resource type, each the version just written
with the version it replaced, still inside the writes' transaction, so that resources derived from them (the
Observations extracted from a completed QuestionnaireResponse) are committed or rolled back together with
them. A transaction hands a hook all its creates of a type at once, so the hook can write what it derives
together too. Hooks see only writes that made a new version, not an update that changed nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from service.storage.repository import ResourceRepository, StoredVersion

WriteRule = Callable[[ResourceRepository, str, dict[str, Any], StoredVersion | None], Awaitable[None]]

Write = tuple[StoredVersion, StoredVersion | None]
AfterWrite = Callable[[ResourceRepository, Sequence[Write]], Awaitable[None]]

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
    await run_after_writes(repository, [(written, previous)])


async def run_after_writes(repository: ResourceRepository, writes: Sequence[Write]) -> None:
    """Run the after-write hooks of each written type once, on all its writes that made a new version."""
    by_type: dict[str, list[Write]] = {}
    for written, previous in writes:
        if written.changed:
            by_type.setdefault(written.resource_type, []).append((written, previous))
    for resource_type, group in by_type.items():
        for hook in _AFTER_WRITE.get(resource_type, ()):
            await hook(repository, group)
