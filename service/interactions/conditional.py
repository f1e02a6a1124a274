"""Conditional create, update and delete.

- create with `If-None-Exist` (https://hl7.org/fhir/R4/http.html#ccreate): no match → create (201); one
  match → that resource, nothing written (200); several → 412.
- update on `PUT [type]?criteria` (https://hl7.org/fhir/R4/http.html#cond-update): no match → create (with
  the body's id when it has one); one match → update it; several → 412.
- delete on `DELETE [type]?criteria` (https://hl7.org/fhir/R4/http.html#cdelete): one match → delete it;
  none → 404; several → 412 (`conditionalDelete = single`).

Matching and writing happen in one database transaction that first takes a transaction-scoped advisory
lock keyed on the type and the criteria in a canonical order, so two requests with the same criteria
(a portal retrying, two worker processes) run one after the other and the second sees what the first
wrote: exactly one resource is created however many race.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from service.errors import BadRequest, InvalidSearch, Issue, NotFound, PreconditionFailed
from service.fhir.search import parse_search
from service.interactions.writes import write_pipeline
from service.storage.matching import matching_ids
from service.storage.repository import ResourceRepository, StoredVersion

Criteria = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Match:
    """What conditional criteria found: no id (none), one id, or `several`."""

    id: str | None
    several: bool = False


def parse_criteria(value: str, resource_type: str, *, expression: str) -> Criteria:
    """Read `If-None-Exist` (or an `ifNoneExist`): a query string, optionally led by `?` or `Type?`."""
    text = value.strip()
    if "?" in text:
        prefix, _, text = text.partition("?")
        if prefix and prefix.rstrip("/").rsplit("/", 1)[-1] != resource_type:
            raise BadRequest(
                Issue(f"{expression} names {prefix!r}, not {resource_type}", expression=expression)
            )
    pairs = tuple(parse_qsl(text, keep_blank_values=False))
    if not pairs:
        raise BadRequest(Issue(f"{expression} holds no search parameters", expression=expression))
    return pairs


async def find_match(
    connection: AsyncConnection,
    resource_type: str,
    criteria: Criteria,
    *,
    base_url: str | None = None,
    expression: str = "criteria",
) -> Match:
    """Lock the criteria for this transaction, then look for matches (two at most: one is all we need)."""
    try:
        query = parse_search(resource_type, criteria, strict=True, base_url=base_url)
    except InvalidSearch as error:
        raise InvalidSearch(
            *(
                Issue(f"{expression}: {i.diagnostics}", expression=expression, code=i.code)
                for i in error.issues
            )
        ) from None
    key = f"{resource_type}?" + "&".join(f"{name}={value}" for name, value in sorted(criteria))
    await connection.execute(select(func.pg_advisory_xact_lock(func.hashtext(key))))
    found = await matching_ids(connection, query, limit=2)
    if len(found) > 1:
        return Match(None, several=True)
    return Match(found[0] if found else None)


def too_many(resource_type: str, criteria: Criteria, expression: str) -> PreconditionFailed:
    rendered = "&".join(f"{name}={value}" for name, value in criteria)
    return PreconditionFailed(
        Issue(
            f"more than one {resource_type} matches {rendered}; the criteria must select at most one",
            expression=expression,
            code="multiple-matches",
        )
    )


async def create_in(
    repository: ResourceRepository,
    resource_type: str,
    content: dict[str, Any],
    criteria: Criteria,
    *,
    base_url: str | None = None,
    expression: str = "If-None-Exist",
    resource_id: str | None = None,
) -> StoredVersion:
    """Conditional create on an open transaction; `created` on the result says which way it went."""
    match = await find_match(
        repository.connection, resource_type, criteria, base_url=base_url, expression=expression
    )
    if match.several:
        raise too_many(resource_type, criteria, expression)
    if match.id is not None:
        existing = await repository.read(resource_type, match.id)
        assert existing is not None
        return existing
    content = {k: v for k, v in content.items() if k != "id"}
    return await write_pipeline().create(repository, resource_type, content, resource_id=resource_id)


async def create_conditionally(
    engine: AsyncEngine, resource_type: str, content: dict[str, Any], criteria: Criteria, *, base_url: str
) -> StoredVersion:
    async with engine.begin() as connection:
        return await create_in(
            ResourceRepository(connection), resource_type, content, criteria, base_url=base_url
        )


async def update_in(
    repository: ResourceRepository,
    resource_type: str,
    content: dict[str, Any],
    criteria: Criteria,
    *,
    if_match: int | None = None,
    base_url: str | None = None,
    expression: str = "criteria",
) -> StoredVersion:
    match = await find_match(
        repository.connection, resource_type, criteria, base_url=base_url, expression=expression
    )
    if match.several:
        raise too_many(resource_type, criteria, expression)
    body_id = content.get("id")
    if match.id is None:
        if if_match is not None:
            raise PreconditionFailed(
                Issue("no resource matches the criteria, so If-Match cannot match", expression="If-Match")
            )
        if body_id is None:
            return await write_pipeline().create(repository, resource_type, content)
        resource_id = str(body_id)
    else:
        if body_id is not None and body_id != match.id:
            raise BadRequest(
                Issue(
                    f"the body's id {body_id!r} differs from the matching {resource_type}/{match.id}",
                    expression=f"{resource_type}.id",
                )
            )
        resource_id = match.id
    content = {**content, "id": resource_id}
    return await write_pipeline().update(repository, resource_type, resource_id, content, if_match=if_match)


async def update_conditionally(
    engine: AsyncEngine,
    resource_type: str,
    content: dict[str, Any],
    criteria: Criteria,
    *,
    if_match: int | None,
    base_url: str,
) -> StoredVersion:
    async with engine.begin() as connection:
        return await update_in(
            ResourceRepository(connection),
            resource_type,
            content,
            criteria,
            if_match=if_match,
            base_url=base_url,
        )


async def delete_in(
    repository: ResourceRepository,
    resource_type: str,
    criteria: Criteria,
    *,
    if_match: int | None = None,
    base_url: str | None = None,
    expression: str = "criteria",
    check_referrers: bool = True,
) -> StoredVersion:
    match = await find_match(
        repository.connection, resource_type, criteria, base_url=base_url, expression=expression
    )
    if match.several:
        raise too_many(resource_type, criteria, expression)
    if match.id is None:
        rendered = "&".join(f"{name}={value}" for name, value in criteria)
        raise NotFound(Issue(f"no {resource_type} matches {rendered}", expression=expression))
    deleted = await repository.delete(
        resource_type, match.id, if_match=if_match, check_referrers=check_referrers
    )
    assert deleted is not None
    return deleted


async def delete_conditionally(
    engine: AsyncEngine, resource_type: str, criteria: Criteria, *, if_match: int | None, base_url: str
) -> StoredVersion:
    async with engine.begin() as connection:
        return await delete_in(
            ResourceRepository(connection), resource_type, criteria, if_match=if_match, base_url=base_url
        )
