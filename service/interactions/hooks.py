"""Business rules that run inside a write's transaction, before anything is stored.

A rule gets the repository (to look things up in the same transaction), the resource type, the incoming
content and the current version (for an update), and raises a `FhirError` to refuse the write.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from service.storage.repository import ResourceRepository, StoredVersion

WriteRule = Callable[[ResourceRepository, str, dict[str, Any], StoredVersion | None], Awaitable[None]]

_RULES: dict[str, list[WriteRule]] = {}


def register_write_rule(resource_type: str, rule: WriteRule) -> None:
    _RULES.setdefault(resource_type, []).append(rule)


async def run_write_rules(
    repository: ResourceRepository, resource_type: str, content: dict[str, Any], current: StoredVersion | None
) -> None:
    for rule in _RULES.get(resource_type, ()):
        await rule(repository, resource_type, content, current)
