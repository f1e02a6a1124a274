"""The one write pipeline: every write passes the compartment check, the write rules, the write and the
after-write hooks here, in that order, inside the caller's transaction.

Create, update, PATCH, the conditional writes, each entry of a batch or transaction, and content loading all
write through it. Its rules and hooks are registered when the application is built
(`service.interactions.rules.standard_write_pipeline`, installed by `install_write_pipeline`), never by an
import's side effect: writing before a pipeline is installed is an error, not a write that skipped its
rules.

A write rule gets the repository (to look things up in the same transaction), the resource type, the
incoming content and the current version (for an update), and raises a `FhirError` to refuse the write.
An after-write hook gets the repository and the writes of one resource type, each the version just written
with the version it replaced, still inside the writes' transaction, so that resources derived from them (the
Observations extracted from a completed QuestionnaireResponse) are committed or rolled back together with
them. A transaction hands a hook all its creates of a type at once. Hooks see only writes that made a new
version, not an update that changed nothing.

What a rule resolves (a response's Questionnaire, its subject) is read through the repository, which keeps
it for the rest of the transaction: the hooks and later rules of the same write find it there instead of
reading it again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from service.fhir.compartment import ensure_writable
from service.storage.repository import ResourceRepository, StoredVersion

WriteRule = Callable[[ResourceRepository, str, dict[str, Any], StoredVersion | None], Awaitable[None]]
Write = tuple[StoredVersion, StoredVersion | None]
AfterWrite = Callable[[ResourceRepository, Sequence[Write]], Awaitable[None]]
# A resource to create together with others: its type, its new id and its content.
NewResource = tuple[str, str, dict[str, Any]]


@dataclass
class WritePipeline:
    rules: dict[str, list[WriteRule]] = field(default_factory=dict)
    hooks: dict[str, list[AfterWrite]] = field(default_factory=dict)

    def add_rule(self, resource_types: Iterable[str], rule: WriteRule) -> None:
        for resource_type in resource_types:
            self.rules.setdefault(resource_type, []).append(rule)

    def add_after_write(self, resource_type: str, hook: AfterWrite) -> None:
        self.hooks.setdefault(resource_type, []).append(hook)

    async def check(
        self,
        repository: ResourceRepository,
        resource_type: str,
        resource_id: str | None,
        content: dict[str, Any],
        current: StoredVersion | None,
    ) -> None:
        """Everything a write of `content` must pass before it is stored: the compartment, then the rules.

        The compartment comes first, so that a refused write names the compartment instead of whatever a
        rule finds missing in it. `$validate` runs this alone.
        """
        ensure_writable(resource_type, resource_id or "", content)
        for rule in self.rules.get(resource_type, ()):
            await rule(repository, resource_type, content, current)

    async def after(self, repository: ResourceRepository, writes: Sequence[Write]) -> None:
        """Run the hooks of each written type once, on all its writes that made a new version."""
        by_type: dict[str, list[Write]] = {}
        for written, previous in writes:
            if written.changed:
                by_type.setdefault(written.resource_type, []).append((written, previous))
        for resource_type, group in by_type.items():
            for hook in self.hooks.get(resource_type, ()):
                await hook(repository, group)

    async def create(
        self,
        repository: ResourceRepository,
        resource_type: str,
        content: dict[str, Any],
        *,
        resource_id: str | None = None,
    ) -> StoredVersion:
        await self.check(repository, resource_type, resource_id, content, None)
        created = await repository.create(resource_type, content, resource_id=resource_id)
        await self.after(repository, [(created, None)])
        return created

    async def create_many(
        self, repository: ResourceRepository, resources: Sequence[NewResource], *, checked: bool = False
    ) -> list[StoredVersion]:
        """Create `resources` together (one COPY per table), then run their hooks together.

        `checked` says the caller has already run `check` on each (a transaction does, entry by entry, so that
        a refusal names its entry).
        """
        if not checked:
            for resource_type, resource_id, content in resources:
                await self.check(repository, resource_type, resource_id, content, None)
        written = await repository.create_many(resources)
        await self.after(repository, [(version, None) for version in written])
        return written

    async def update(
        self,
        repository: ResourceRepository,
        resource_type: str,
        resource_id: str,
        content: dict[str, Any],
        *,
        if_match: int | None = None,
        current: StoredVersion | None = None,
    ) -> StoredVersion:
        """Write a new version (or create the resource under `resource_id`).

        The current version is locked first, unless the caller passes the one it already locked, so the rules
        judge the change against the version it replaces, not an older one.
        """
        if current is None:
            current = await repository.read_for_update(resource_type, resource_id)
        await self.check(repository, resource_type, resource_id, content, current)
        written = await repository.update(resource_type, resource_id, content, if_match=if_match)
        await self.after(repository, [(written, current)])
        return written


_installed: WritePipeline | None = None


def install_write_pipeline(pipeline: WritePipeline) -> None:
    global _installed
    _installed = pipeline


def write_pipeline() -> WritePipeline:
    if _installed is None:
        raise RuntimeError("no write pipeline is installed: build the application, or install_write_pipeline")
    return _installed
