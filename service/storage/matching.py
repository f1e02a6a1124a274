"""The ids of the current resources that match conditional criteria.

Conditional create, update and delete (https://hl7.org/fhir/R4/http.html#cond-update) need only "which
resources match these parameters, and are there more than one". This answers that for the criteria such
requests use in practice, over the search indexes: token parameters (`identifier`, `_id`, `status`,
`code` ...: `code`, `system|code`, `|code`, `system|`), references to this server (`subject=Patient/1`),
uri parameters (`url`) and strings (starts-with, `:exact`). Other parameter kinds, modifiers, chains and
`_has` are refused with 400, so a conditional write never acts on a guess.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from service.errors import InvalidSearch, Issue
from service.fhir.search import (
    ParameterClause,
    ReferenceSearch,
    SearchQuery,
    StringSearch,
    TokenSearch,
    UriSearch,
)
from service.storage.indexing.rows import (
    COLUMN_ROWS,
    search_reference,
    search_string,
    search_token,
    search_uri,
)
from service.storage.tables import resources
from service.storage.visibility import current_compartment_filter


async def matching_ids(connection: AsyncConnection, query: SearchQuery, *, limit: int = 2) -> list[str]:
    """Up to `limit` ids of live `query.resource_type` resources matching every clause of `query`."""
    if not query.clauses:
        raise InvalidSearch(
            Issue("conditional criteria need at least one supported search parameter", expression="criteria")
        )
    conditions = [_clause(query.resource_type, clause) for clause in query.clauses]
    statement = (
        select(resources.c.id)
        .where(
            resources.c.resource_type == query.resource_type,
            resources.c.deleted.is_(False),
            # A patient-context request matches only within its compartment, as its searches do.
            *current_compartment_filter([query.resource_type]),
            *conditions,
        )
        .order_by(resources.c.id)
        .limit(limit)
    )
    return list((await connection.execute(statement)).scalars())


def _clause(resource_type: str, clause: Any) -> Any:
    if not isinstance(clause, ParameterClause) or clause.modifier not in (None, "exact"):
        name = getattr(getattr(clause, "parameter", None), "code", "criteria")
        raise InvalidSearch(
            Issue(
                f"'{name}' with a modifier, chain or _has cannot be used in conditional criteria",
                expression=name,
                code="not-supported",
            )
        )
    code = clause.parameter.code
    alternatives = [_value(resource_type, code, value, clause.modifier) for value in clause.values]
    return or_(*alternatives)


def _value(resource_type: str, code: str, value: Any, modifier: str | None) -> Any:
    table: Any
    if isinstance(value, TokenSearch):
        table = COLUMN_ROWS.get(code, search_token)
        conditions = []
        if value.code is not None:
            conditions.append(table.c.code == value.code)
        if value.match_system:
            conditions.append(
                table.c.system.is_(None) if value.system is None else table.c.system == value.system
            )
    elif isinstance(value, ReferenceSearch) and value.url is None and value.target_id is not None:
        table = search_reference
        conditions = [table.c.target_id == value.target_id, table.c.url.is_(None)]
        if value.target_type is not None:
            conditions.append(table.c.target_type == value.target_type)
    elif isinstance(value, ReferenceSearch) and value.url is not None:
        table = search_reference
        conditions = [table.c.url == value.url]
        if value.version is not None:
            conditions.append(table.c.version == value.version)
    elif isinstance(value, UriSearch):
        table = search_uri
        conditions = [table.c.uri == value.uri]
    elif isinstance(value, StringSearch):
        table = search_string
        if modifier == "exact":
            conditions = [table.c.exact == value.value]
        else:
            conditions = [table.c.value.startswith(value.normalized, autoescape=True)]
    else:
        raise InvalidSearch(
            Issue(
                f"'{code}' is a kind of parameter that conditional criteria do not support here",
                expression=code,
                code="not-supported",
            )
        )
    return exists().where(
        and_(
            table.c.resource_type == resource_type,
            table.c.resource_id == resources.c.id,
            table.c.param == code,
            *conditions,
        )
    )
