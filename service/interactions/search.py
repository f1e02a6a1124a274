"""search (type and system): https://hl7.org/fhir/R4/http.html#search, https://hl7.org/fhir/R4/search.html

A search reads one page of matches, then what `_include`/`_revinclude` add, then the total when it is asked
for and not already known: one statement each, on one connection, outside an explicit transaction (each
statement sees its own snapshot; a write landing between two of them can make the total differ from the
pages by that write, as it could between two page requests anyway). The searchset Bundle is assembled from
the stored JSON text. Links: `self` repeats the parameters that were used (ignored ones left out, #errors),
`first` drops the position, `next` and `previous` carry an opaque keyset cursor (`_cursor`).

`_total`: `accurate` counts the matches on every page, except on a first page that holds all of them, where
the count is the page itself; `estimate` asks the query planner (a token that may not see every row
searched gets the exact count instead); `none` leaves `total` out. Without
`_total`, the first page is counted as with `accurate` and the following pages carry no `total`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from service.errors import InvalidSearch, Issue, operation_outcome
from service.fhir.access import AUDIT_EVENT, current_access, ensure_may_send
from service.fhir.bundle import BundleDocument, Entry, Link
from service.fhir.search import SearchQuery, UnknownParameter, parse_search, render_query
from service.fhir.search_parameters import COMMON_BASE, parameters_for, served_types
from service.fhir.subsetting import subset
from service.storage.reading import reading
from service.storage.search import (
    Position,
    Scope,
    SearchPage,
    count_matches,
    decode_cursor,
    encode_cursor,
    estimate_matches,
    included,
    search_page,
)


@dataclass(frozen=True, slots=True)
class SearchOptions:
    """How a search is read: `strict` is `Prefer: handling=strict`; page sizes come from the settings."""

    base_url: str
    strict: bool = False
    default_count: int = 20
    max_count: int = 500


def _check_values(parameters: Sequence[tuple[str, str]]) -> None:
    for name, value in parameters:
        if "\x00" in name or "\x00" in value:
            raise InvalidSearch(
                Issue(f"Search parameter '{name}' holds a NUL character", expression=name.replace("\x00", ""))
            )


async def search_type(
    engine: AsyncEngine, resource_type: str, parameters: Sequence[tuple[str, str]], options: SearchOptions
) -> bytes:
    """`GET [base]/[type]?...` (and `POST [base]/[type]/_search`): a searchset Bundle."""
    _check_values(parameters)
    query = parse_search(
        resource_type,
        parameters,
        strict=options.strict,
        base_url=options.base_url,
        default_count=options.default_count,
        max_count=options.max_count,
    )
    return await _run(engine, query, _visible((resource_type,)), options, path=f"/{resource_type}", prefix=())


# The system search serves the parameters every type has (https://hl7.org/fhir/R4/search.html#all).
_SYSTEM_RESULT_PARAMETERS = frozenset({"_count", "_total", "_summary", "_elements", "_cursor", "_sort"})
_TRANSPORT = frozenset({"_format", "_pretty"})


async def search_system(
    engine: AsyncEngine, parameters: Sequence[tuple[str, str]], options: SearchOptions
) -> bytes:
    """`GET [base]?_type=...`: the common parameters (`_id`, `_lastUpdated`, `_tag` ...) across types."""
    _check_values(parameters)
    common = {code for code, p in parameters_for("Patient").items() if COMMON_BASE in p.bases}
    types: list[str] = []
    kept: list[tuple[str, str]] = []
    ignored: list[UnknownParameter] = []
    for name, value in parameters:
        if name == "_type":
            for item in value.split(","):
                if item not in served_types():
                    raise InvalidSearch(
                        Issue(
                            f"Invalid value {item!r} for '_type': not a served resource type", expression=name
                        )
                    )
                if item not in types:
                    types.append(item)
            continue
        base = name.split(":", 1)[0].split(".", 1)[0]
        if name in _TRANSPORT or value == "":
            continue
        if base == "_sort":
            usable = all(key.lstrip("-") in common for key in value.split(","))
        else:
            usable = base in common or base in _SYSTEM_RESULT_PARAMETERS
        if usable:
            kept.append((name, value))
        else:
            reason = "a search across types takes only the parameters common to all types"
            if options.strict:
                raise InvalidSearch(
                    Issue(
                        f"Unknown or unsupported search parameter '{name}': {reason}",
                        expression=name,
                        code="not-supported",
                    )
                )
            ignored.append(UnknownParameter(name, value, reason))
    # The common parameters are the same definitions on every type: parse them against any one.
    query = parse_search(
        types[0] if types else "Patient",
        kept,
        strict=options.strict,
        base_url=options.base_url,
        default_count=options.default_count,
        max_count=options.max_count,
    )
    query = _with_unknown(query, ignored)
    scope = _visible(tuple(types) if types else tuple(sorted(_stored_types())))
    prefix = (("_type", ",".join(types)),) if types else ()
    return await _run(engine, query, scope, options, path="", prefix=prefix)


def _stored_types() -> Iterable[str]:
    """A search across types without `_type` covers every type but the audit trail, which is searched
    only by name (`_type=AuditEvent` or `GET AuditEvent`) and with a scope that names it."""
    return served_types() - {AUDIT_EVENT}


def _visible(types: tuple[str, ...]) -> Scope:
    """The searched types, narrowed to what the requester may see (docs/security.md, "Who sees what")."""
    return Scope(types, current_access())


def _with_unknown(query: SearchQuery, ignored: Sequence[UnknownParameter]) -> SearchQuery:
    if not ignored:
        return query
    return SearchQuery(
        resource_type=query.resource_type,
        clauses=query.clauses,
        sort=query.sort,
        count=query.count,
        total=query.total,
        summary=query.summary,
        elements=query.elements,
        includes=query.includes,
        revincludes=query.revincludes,
        cursor=query.cursor,
        unknown=(*query.unknown, *ignored),
        normalized=query.normalized,
    )


async def _run(
    engine: AsyncEngine,
    query: SearchQuery,
    scope: Scope,
    options: SearchOptions,
    *,
    path: str,
    prefix: tuple[tuple[str, str], ...],
) -> bytes:
    position = decode_cursor(query.cursor, query.sort) if query.cursor else None
    only_count = query.summary == "count" or query.count == 0
    total: int | None = None
    page = SearchPage([], more=False, backwards=False)
    extra = []
    async with reading(engine) as connection:
        await _plan_for_values(connection)
        if not only_count:
            page = await search_page(connection, query, scope, position)
            keys = [(m.resource_type, m.id) for m in page.matches]
            extra = await included(connection, query, keys, scope)
        # Without `_total`, later pages leave the count out: the first page gave it, and counting a large
        # result again on every page would cost more than the page itself.
        if query.total in ("accurate", "estimate") or (query.total is None and position is None):
            if position is None and not page.more and not only_count:
                total = len(page.matches)
            elif query.total == "estimate" and not scope.visibility(scope.types, "s"):
                # Only for a token that sees every row searched: the planner's statistics are taken over all
                # the rows, so its estimate for one confined to a patient would move with the others' data.
                total = await estimate_matches(connection, query, scope)
            else:
                total = await count_matches(connection, query, scope)

    def url(cursor: str | None) -> str:
        rendered = render_query(_prefixed(query, prefix), cursor=cursor)
        return f"{options.base_url}{path}" + (f"?{rendered}" if rendered else "")

    links = [Link("self", url(query.cursor)), Link("first", url(None))]
    if page.matches:
        forward_more = page.more if not page.backwards else True
        backward_more = page.more if page.backwards else position is not None
        if forward_more:
            links.append(Link("next", url(encode_cursor(page.matches[-1].keys))))
        if backward_more:
            links.append(Link("previous", url(encode_cursor(page.matches[0].keys, backwards=True))))
    for match in page.matches:
        ensure_may_send(match.resource_type, match.patient_id, "s")
    for include in extra:
        ensure_may_send(include.resource_type, include.patient_id, "r")
    entries = [
        Entry(
            full_url=f"{options.base_url}/{m.resource_type}/{m.id}",
            resource=subset(m.content, summary=query.summary, elements=query.elements),
            search={"mode": "match"},
        )
        for m in page.matches
    ]
    entries += [
        Entry(
            full_url=f"{options.base_url}/{i.resource_type}/{i.id}",
            resource=subset(i.content, summary=query.summary, elements=()),
            search={"mode": "include"},
        )
        for i in extra
    ]
    warnings = query.warnings()
    if warnings:
        outcome = operation_outcome(list(warnings), default_code="not-supported")
        entries.append(
            Entry(
                full_url=f"urn:uuid:{uuid.uuid4()}",
                resource=orjson.dumps(outcome),
                search={"mode": "outcome"},
            )
        )
    return BundleDocument("searchset", entries=entries, links=links, total=total).render()


async def _plan_for_values(connection: AsyncConnection) -> None:
    """Plan each search for its own values, once per pooled connection.

    asyncpg prepares statements, and after five runs PostgreSQL may switch a prepared statement to a generic
    plan that cannot see how selective `target_id = $1` is: measured on 20,000 CarePlans, the generic plan
    of `CarePlan?patient=x&status=active` walks the primary key (hundreds of ms) where the custom plan probes
    the reference index (under 1 ms). Planning a search costs well under a millisecond.
    """
    info = connection.info
    if not info.get("custom_plans"):
        await connection.exec_driver_sql("SET plan_cache_mode = force_custom_plan")
        info["custom_plans"] = True


def _prefixed(query: SearchQuery, prefix: tuple[tuple[str, str], ...]) -> SearchQuery:
    if not prefix:
        return query
    return SearchQuery(resource_type=query.resource_type, normalized=(*prefix, *query.normalized))


__all__ = ["Position", "SearchOptions", "search_system", "search_type"]
