"""Search as SQL: a `SearchQuery` becomes one statement over `resources` and the index tables.

https://hl7.org/fhir/R4/search.html. Every clause is an `EXISTS` over the index table of its parameter type
(`search_token`, `search_string`, `search_reference`, `search_date`, `search_uri`, `search_number`), keyed by
the resource it belongs to (for `_id` and `_lastUpdated`, over the resource rows, which hold both); the
values of a clause are ORed inside it, clauses are ANDed. Chains
(https://hl7.org/fhir/R4/search.html#chaining) follow a reference row to its target's index rows, `_has`
(#has) goes the other way. A canonical reference (`QuestionnaireResponse.questionnaire`) is matched through
the target's `url` index, with its `|version` when the reference has one.

Paging is by keyset, never OFFSET: the rows are ordered by the sort keys, then `resource_type` and `id`, and
a page starts strictly after (or, for `previous`, strictly before) the position a cursor carries. Rows
written between two page requests therefore never shift the pages: a match that existed stays on exactly
one page. Without `_sort` the order is by id, which no update changes. With `_sort` on a parameter, a
resource whose sort value is changed between two pages moves, as it would in any keyset.

Sort values of multi-valued parameters follow #sort: ascending by the lowest value, descending by the
highest; resources without a value come last in both directions. Content comes back as the JSON text
PostgreSQL stores; nothing here parses a resource.
"""

from __future__ import annotations

import base64
import binascii
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import (
    ARRAY,
    ColumnElement,
    FromClause,
    Select,
    Table,
    Text,
    and_,
    cast,
    exists,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    true,
    tuple_,
    union,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from service.errors import InvalidSearch, Issue
from service.fhir.access import Access
from service.fhir.extraction import is_canonical
from service.fhir.scopes import Permission
from service.fhir.search import (
    ChainClause,
    Clause,
    DateSearch,
    HasClause,
    Include,
    NumberSearch,
    ParameterClause,
    ReferenceSearch,
    SearchQuery,
    SortKey,
    StringSearch,
    TokenSearch,
    UriSearch,
)
from service.fhir.search_parameters import SearchParameter, parameters_for
from service.storage.indexing.rows import (
    COLUMN_ROWS,
    INFINITY,
    NEGATIVE_INFINITY,
    search_date,
    search_number,
    search_reference,
    search_string,
    search_token,
    search_uri,
)
from service.storage.tables import resources
from service.storage.visibility import reach_filter

_TABLES: dict[str, Table] = {
    "token": search_token,
    "string": search_string,
    "reference": search_reference,
    "date": search_date,
    "uri": search_uri,
    "number": search_number,
    "quantity": search_number,
}
_CONTENT = cast(resources.c.content, Text)
_MAX_INCLUDES = 10_000


@dataclass(frozen=True, slots=True)
class Owner:
    """The resource a condition is about: the searched row itself, a chain's target or a `_has` source.

    `access` is the requester's: a chain or `_has` looks only at the resources it may search, so that no
    answer depends on what it may not see.
    """

    type: ColumnElement[str]
    id: ColumnElement[str]
    root: bool = False
    access: Access | None = None


@dataclass(frozen=True, slots=True)
class Position:
    """Where a page starts: strictly after `keys` (or strictly before them, `backwards`).

    `keys` are the values of the sort keys, then the resource type and id of the row at the boundary.
    """

    keys: tuple[Any, ...]
    backwards: bool = False


@dataclass(frozen=True, slots=True)
class Match:
    resource_type: str
    id: str
    content: bytes
    keys: tuple[Any, ...]
    patient_id: str | None = None


@dataclass(frozen=True, slots=True)
class Included:
    resource_type: str
    id: str
    content: bytes
    patient_id: str | None = None


@dataclass(frozen=True, slots=True)
class SearchPage:
    """One page in display order; `more` says a row exists beyond it in the direction it was read."""

    matches: list[Match]
    more: bool
    backwards: bool


# --- the cursor ----------------------------------------------------------------------------------


def encode_cursor(keys: Sequence[Any], *, backwards: bool = False) -> str:
    """An opaque `_cursor` for the position after (or, `backwards`, before) a row with these keys."""
    document = {"d": "p" if backwards else "n", "k": [_encode_key(key) for key in keys]}
    return base64.urlsafe_b64encode(orjson.dumps(document)).decode().rstrip("=")


def decode_cursor(cursor: str, sort: Sequence[SortKey]) -> Position:
    """Read a cursor made by `encode_cursor` for the same sort keys; 400 naming `_cursor` otherwise."""
    try:
        document = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        keys = document["k"]
        direction = document["d"]
        if direction not in ("n", "p") or not isinstance(keys, list) or len(keys) != len(sort) + 2:
            raise ValueError("the cursor does not fit this search")
        kinds = [_key_kind(key) for key in sort] + ["text", "text"]
        decoded = tuple(_decode_key(value, kind) for value, kind in zip(keys, kinds, strict=True))
    except (ValueError, TypeError, KeyError, binascii.Error, orjson.JSONDecodeError):
        raise InvalidSearch(
            Issue(
                "Invalid value for '_cursor': take it unchanged from a next or previous link of the search",
                expression="_cursor",
            )
        ) from None
    if decoded[-1] is None or decoded[-2] is None:
        raise InvalidSearch(Issue("Invalid value for '_cursor': no resource position", expression="_cursor"))
    return Position(decoded, backwards=direction == "p")


def _key_kind(key: SortKey) -> str:
    if key.parameter.code == "_lastUpdated" or key.parameter.type == "date":
        return "date"
    return "text"


def _encode_key(value: Any) -> Any:
    if isinstance(value, datetime):
        # asyncpg reads -infinity/infinity back as the naive datetime.min/max.
        if value.tzinfo is None and value == datetime.max:
            return "infinity"
        if value.tzinfo is None and value == datetime.min:
            return "-infinity"
        return value.astimezone(UTC).isoformat()
    return value


def _decode_key(value: Any, kind: str) -> Any:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("not a key")
    if kind == "text":
        if "\x00" in value:
            raise ValueError("not a key")
        return value
    if value == "infinity":
        return INFINITY
    if value == "-infinity":
        return NEGATIVE_INFINITY
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError("not an instant")
    return moment


# --- conditions ----------------------------------------------------------------------------------


def _like_prefix(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _rows(
    table: FromClause, owner: Owner, code: str, *conditions: ColumnElement[bool]
) -> ColumnElement[bool]:
    keyed = _root_rows(table, owner.type, code) if owner.root else _owner_rows(table, owner, code)
    return exists().where(*keyed, *conditions)


def _owner_rows(table: FromClause, owner: Owner, code: str) -> tuple[ColumnElement[bool], ...]:
    return (table.c.resource_type == owner.type, table.c.resource_id == owner.id, table.c.param == code)


# SQL elements are immutable and may be shared between statements: the conditions that tie an index table's
# rows to the searched resource are the same for every search of a type and parameter, and building them
# anew was a good part of building a search.
@functools.lru_cache(maxsize=1024)
def _root_rows(
    table: FromClause, owner_type: ColumnElement[str], code: str
) -> tuple[ColumnElement[bool], ...]:
    return (table.c.resource_type == owner_type, table.c.resource_id == resources.c.id, table.c.param == code)


def clause_condition(clause: Clause, resource_type: str, owner: Owner) -> ColumnElement[bool]:
    """The condition one clause puts on `owner`, a resource of `resource_type`."""
    if isinstance(clause, ParameterClause):
        return _parameter_condition(clause, resource_type, owner)
    if isinstance(clause, ChainClause):
        return _chain_condition(clause, resource_type, owner)
    return _has_condition(clause, resource_type, owner)


def _parameter_condition(clause: ParameterClause, resource_type: str, owner: Owner) -> ColumnElement[bool]:
    parameter = clause.parameter
    code = parameter.code
    if owner.root and code == "_id" and clause.missing is None:
        ids = [v.code for v in clause.values if isinstance(v, TokenSearch) and v.code is not None]
        if clause.modifier is None and all(
            isinstance(v, TokenSearch) and not v.match_system for v in clause.values
        ):
            return owner.id.in_(ids)
    if owner.root and code == "_lastUpdated" and clause.missing is None:
        point = _Range(resources.c.last_updated, resources.c.last_updated, point=True)
        return or_(*(point.matches(v) for v in clause.values if isinstance(v, DateSearch)))
    table = COLUMN_ROWS[code] if code in COLUMN_ROWS else _TABLES[parameter.type]
    if clause.missing is not None:
        present = _rows(table, owner, code)
        return not_(present) if clause.missing else present
    matches = or_(
        *(
            _value_condition(table, parameter, resource_type, value, clause.modifier)
            for value in clause.values
        )
    )
    if clause.modifier == "not":
        return not_(_rows(table, owner, code, matches))
    return _rows(table, owner, code, matches)


def _value_condition(
    table: FromClause, parameter: SearchParameter, resource_type: str, value: object, modifier: str | None
) -> ColumnElement[bool]:
    c = table.c
    if isinstance(value, TokenSearch):
        conditions: list[ColumnElement[bool]] = []
        if value.match_system:
            conditions.append(c.system.is_(None) if value.system is None else c.system == value.system)
        if value.code is not None:
            conditions.append(c.code == value.code)
        return and_(*conditions)
    if isinstance(value, StringSearch):
        column = c.text if parameter.type == "token" else c.value
        if parameter.type == "string" and modifier == "exact":
            return c.exact == value.value
        pattern = _like_prefix(value.normalized) + "%"
        if parameter.type == "string" and modifier == "contains":
            pattern = "%" + pattern
        return column.like(pattern, escape="\\")
    if isinstance(value, ReferenceSearch):
        return _reference_condition(table, parameter, resource_type, value)
    if isinstance(value, DateSearch):
        return _Range(c.low, c.high).matches(value)
    if isinstance(value, UriSearch):
        if modifier == "below":
            return c.uri.like(_like_prefix(value.uri) + "%", escape="\\")
        return c.uri == value.uri
    if isinstance(value, NumberSearch):
        return _number_condition(table, value)
    raise TypeError(f"unexpected search value {value!r}")


def _reference_condition(
    table: FromClause, parameter: SearchParameter, resource_type: str, value: ReferenceSearch
) -> ColumnElement[bool]:
    c = table.c
    canonical = is_canonical(resource_type, parameter.code)
    if value.url is not None:
        condition = c.url == value.url
        if canonical and value.version is not None:
            condition = and_(condition, c.version == value.version)
        return condition
    if canonical:
        # A canonical searched by id (or Type/id): the reference names the target's url, not its id.
        targets = (value.target_type,) if value.target_type else parameter.targets
        url = select(search_uri.c.uri).where(
            search_uri.c.resource_type.in_(targets),
            search_uri.c.resource_id == value.target_id,
            search_uri.c.param == "url",
        )
        version = select(search_token.c.code).where(
            search_token.c.resource_type.in_(targets),
            search_token.c.resource_id == value.target_id,
            search_token.c.param == "version",
        )
        return and_(c.url.in_(url), or_(c.version.is_(None), c.version.in_(version)))
    if value.target_type is None:
        return and_(_is_local(table), c.target_id == value.target_id)
    return and_(_is_local(table), c.target_id == value.target_id, _targets_type(table, value.target_type))


@functools.lru_cache(maxsize=8)
def _is_local(table: FromClause) -> ColumnElement[bool]:
    return table.c.url.is_(None)


@functools.lru_cache(maxsize=256)
def _targets_type(table: FromClause, target_type: str) -> ColumnElement[bool]:
    return table.c.target_type == target_type


def _number_condition(table: FromClause, value: NumberSearch) -> ColumnElement[bool]:
    column = table.c.value
    prefix = value.prefix
    if prefix == "eq":
        condition = and_(column >= value.low, column < value.high)
    elif prefix == "ne":
        condition = not_(and_(column >= value.low, column < value.high))
    elif prefix in ("gt", "sa"):
        condition = column > value.value
    elif prefix in ("lt", "eb"):
        condition = column < value.value
    elif prefix == "ge":
        condition = column >= value.value
    elif prefix == "le":
        condition = column <= value.value
    else:
        margin = abs(value.value) / 10
        condition = and_(column >= value.value - margin, column <= value.value + margin)
    if value.system is not None:
        condition = and_(condition, table.c.system == value.system)
    if value.code is not None:
        condition = and_(condition, table.c.code == value.code)
    return condition


def _shift(moment: datetime, delta: timedelta) -> datetime:
    try:
        return moment + delta
    except OverflowError:
        return INFINITY if delta > timedelta(0) else NEGATIVE_INFINITY


@dataclass(frozen=True, slots=True)
class _Range:
    """An indexed half-open range `[low, high)`, or with `point` one instant (`resources.last_updated`).

    `DateSearch.matches` states the rules; this writes the same comparisons as SQL. Only `high > x` and
    `high <= x` are needed, and for a point `t` they read `t >= x` and `t < x`, which keeps them sargable.
    """

    low: ColumnElement[datetime]
    high: ColumnElement[datetime]
    point: bool = False

    def _high_gt(self, moment: datetime) -> ColumnElement[bool]:
        return self.high >= moment if self.point else self.high > moment

    def _high_le(self, moment: datetime) -> ColumnElement[bool]:
        return self.high < moment if self.point else self.high <= moment

    def matches(self, value: DateSearch) -> ColumnElement[bool]:
        low, high = value.low, value.high or INFINITY
        contains = and_(self.low >= low, self._high_le(high))
        prefix = value.prefix
        if prefix == "eq":
            return contains
        if prefix == "ne":
            return not_(contains)
        if prefix == "gt":
            return self._high_gt(high)
        if prefix == "lt":
            return self.low < low
        if prefix == "ge":
            return or_(self._high_gt(high), contains)
        if prefix == "le":
            return or_(self.low < low, contains)
        if prefix == "sa":
            return self.low >= high
        if prefix == "eb":
            return self._high_le(low)
        return and_(self.low < _shift(high, value.margin), self._high_gt(_shift(low, -value.margin)))


def _live(owner: Owner, *conditions: ColumnElement[bool]) -> ColumnElement[bool]:
    return (
        exists()
        .where(
            resources.c.resource_type == owner.type,
            resources.c.id == owner.id,
            resources.c.deleted.is_(False),
            *conditions,
        )
        .correlate_except(resources)
    )


def _canonical_targets(reference: Any, target_types: Sequence[str]) -> tuple[Any, ColumnElement[bool]]:
    """The `url` rows of the resources a canonical reference row names, and the condition joining them."""
    url_rows = search_uri.alias()
    version_rows = search_token.alias()
    version_matches = or_(
        reference.c.version.is_(None),
        exists().where(
            version_rows.c.resource_type == url_rows.c.resource_type,
            version_rows.c.resource_id == url_rows.c.resource_id,
            version_rows.c.param == "version",
            version_rows.c.code == reference.c.version,
        ),
    )
    joined = and_(
        url_rows.c.param == "url",
        url_rows.c.uri == reference.c.url,
        url_rows.c.resource_type.in_(target_types),
        version_matches,
    )
    return url_rows, joined


def _chain_condition(clause: ChainClause, resource_type: str, owner: Owner) -> ColumnElement[bool]:
    reference = search_reference.alias()
    inner = clause.clause
    conditions: list[ColumnElement[bool]] = [
        reference.c.resource_type == owner.type,
        reference.c.resource_id == owner.id,
        reference.c.param == clause.parameter.code,
    ]
    if is_canonical(resource_type, clause.parameter.code):
        url_rows, joined = _canonical_targets(reference, clause.target_types)
        target = Owner(url_rows.c.resource_type, url_rows.c.resource_id, access=owner.access)
        conditions.append(joined)
    else:
        target = Owner(reference.c.target_type, reference.c.target_id, access=owner.access)
        conditions += [reference.c.url.is_(None), reference.c.target_type.in_(clause.target_types)]
    conditions.append(
        or_(*(_parameter_condition(inner, target_type, target) for target_type in clause.target_types[:1]))
    )
    seen = reach_filter(owner.access, clause.target_types, "s")
    if seen or inner.missing is True or inner.modifier == "not":
        # The absence of index rows matches a dangling reference too, and a target the requester may not
        # search must not decide the match either way.
        conditions.append(_live(target, *seen))
    return exists().where(*conditions)


def _has_condition(clause: HasClause, resource_type: str, owner: Owner) -> ColumnElement[bool]:
    reference = search_reference.alias()
    source = Owner(reference.c.resource_type, reference.c.resource_id, access=owner.access)
    conditions: list[ColumnElement[bool]] = [
        reference.c.resource_type == clause.source_type,
        reference.c.param == clause.reference.code,
        # Index rows carry their resource's compartment: only sources the requester may search count.
        *reach_filter(
            owner.access,
            [clause.source_type],
            "s",
            type_column=reference.c.resource_type,
            patient_column=reference.c.patient_id,
        ),
    ]
    if is_canonical(clause.source_type, clause.reference.code):
        url_rows = search_uri.alias()
        conditions.append(
            reference.c.url.in_(
                select(url_rows.c.uri)
                .where(
                    url_rows.c.resource_type == owner.type,
                    url_rows.c.resource_id == owner.id,
                    url_rows.c.param == "url",
                )
                .correlate_except(url_rows)
            )
        )
    else:
        conditions += [
            reference.c.url.is_(None),
            reference.c.target_type == owner.type,
            reference.c.target_id == owner.id,
        ]
    conditions.append(_parameter_condition(clause.clause, clause.source_type, source))
    return exists().where(*conditions)


# --- statements ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Scope:
    """What is searched: one type (`Patient?...`) or several (`?_type=...` on the system), and who asks.

    `access` (None: no restriction) keeps out, of the matches, the total, what `_include`/`_revinclude`
    add and what a chain or `_has` looks at, every resource the requester's scopes do not reach: matches
    and the rows a query looks at need search permission on their type, included resources read permission
    (docs/security.md, "Who sees what").
    """

    types: tuple[str, ...]
    access: Access | None = None

    def visibility(self, types: Sequence[str] | None, permission: Permission) -> list[ColumnElement[bool]]:
        """Conditions on `resources` keeping out what may not be seen, for rows of `types` (None: any)."""
        return reach_filter(self.access, types, permission)

    @property
    def single(self) -> str | None:
        return self.types[0] if len(self.types) == 1 else None


def _root(scope: Scope) -> Owner:
    single = scope.single
    owner_type = _type_literal(single) if single else resources.c.resource_type
    return Owner(owner_type, resources.c.id, root=True, access=scope.access)


@functools.lru_cache(maxsize=64)
def _type_literal(resource_type: str) -> ColumnElement[str]:
    return literal(resource_type, Text)


@functools.lru_cache(maxsize=64)
def _live_of_type(resource_type: str) -> tuple[ColumnElement[bool], ...]:
    return resources.c.resource_type == resource_type, _NOT_DELETED


_NOT_DELETED = resources.c.deleted.is_(False)


def _filters(query: SearchQuery, scope: Scope) -> list[ColumnElement[bool]]:
    owner = _root(scope)
    single = scope.single
    conditions: list[ColumnElement[bool]] = [
        *(_live_of_type(single) if single else (resources.c.resource_type.in_(scope.types), _NOT_DELETED)),
        *scope.visibility(scope.types, "s"),
    ]
    for clause in query.clauses:
        conditions.append(clause_condition(clause, query.resource_type, owner))
    return conditions


def _sort_column(key: SortKey, scope: Scope, index: int) -> tuple[ColumnElement[Any], Any]:
    """The expression a sort key orders by, and the lateral subquery it needs (None for a column)."""
    code = key.parameter.code
    if code == "_id":
        return resources.c.id, None
    if code == "_lastUpdated":
        return resources.c.last_updated, None
    table = _TABLES[key.parameter.type]
    kind = key.parameter.type
    if kind == "date":
        column = table.c.high if key.descending else table.c.low
    else:
        column = table.c.value if kind == "string" else table.c.code
    aggregate = func.max(column) if key.descending else func.min(column)
    owner = _root(scope)
    lateral = (
        select(aggregate.label("value"))
        .where(table.c.resource_type == owner.type, table.c.resource_id == owner.id, table.c.param == code)
        .lateral(f"sort_{index}")
    )
    return lateral.c.value, lateral


@dataclass(frozen=True, slots=True)
class _Key:
    expression: ColumnElement[Any]
    descending: bool
    nullable: bool


def _keyset(keys: Sequence[_Key], values: Sequence[Any], *, backwards: bool) -> ColumnElement[bool]:
    """Rows strictly after (or before) `values` in the order of `keys`, missing values last."""
    alternatives: list[ColumnElement[bool]] = []
    equal_so_far: list[ColumnElement[bool]] = []
    tail = _row_comparable_tail(keys, values)
    for index, (key, value) in enumerate(zip(keys, values, strict=True)):
        if index == tail:
            # `(type, id) > ('QuestionnaireResponse', 'x')` is a range on the primary key; the same test
            # spelled with OR and AND is not, and made every page after the first walk from the start.
            later = keys[index].descending == backwards
            row = tuple_(*(k.expression for k in keys[index:]))
            bound = tuple_(*(literal(v) for v in values[index:]))
            alternatives.append(and_(*equal_so_far, row > bound if later else row < bound))
            break
        column = key.expression
        later = key.descending == backwards  # ascending forward, or descending backward: look upward
        if value is None:
            beyond: ColumnElement[bool] = column.is_not(None) if backwards else false()
            same: ColumnElement[bool] = column.is_(None)
        else:
            beyond = column > value if later else column < value
            if key.nullable and not backwards:
                beyond = or_(beyond, column.is_(None))
            same = column == value
        alternatives.append(and_(*equal_so_far, beyond))
        equal_so_far.append(same)
    return or_(*alternatives)


def _row_comparable_tail(keys: Sequence[_Key], values: Sequence[Any]) -> int:
    """Where the trailing keys begin that one row comparison can test: same direction, never missing."""
    start = len(keys)
    while (
        start > 0
        and not keys[start - 1].nullable
        and values[start - 1] is not None
        and keys[start - 1].descending == keys[-1].descending
    ):
        start -= 1
    return start if start < len(keys) - 1 else len(keys)


def _order(keys: Sequence[_Key], *, backwards: bool) -> list[Any]:
    order: list[Any] = []
    for key in keys:
        descending = key.descending != backwards
        expression = key.expression.desc() if descending else key.expression.asc()
        if key.nullable:
            expression = expression.nulls_first() if backwards else expression.nulls_last()
        order.append(expression)
    return order


def page_statement(query: SearchQuery, scope: Scope, position: Position | None) -> Select[Any]:
    """The rows of one page (and one more, which tells whether another page follows)."""
    keys: list[_Key] = []
    source: Any = resources
    for index, sort_key in enumerate(query.sort):
        expression, lateral = _sort_column(sort_key, scope, index)
        if lateral is not None:
            source = source.join(lateral, true())
        keys.append(_Key(expression, sort_key.descending, nullable=lateral is not None))
    keys += _TIE_BREAKERS
    backwards = position is not None and position.backwards
    statement = (
        select(*_MATCH_COLUMNS, *(key.expression.label(f"key_{i}") for i, key in enumerate(keys[:-2])))
        .select_from(source)
        .where(*_filters(query, scope))
    )
    if position is not None:
        statement = statement.where(_keyset(keys, position.keys, backwards=backwards))
    order = _BY_KEY[backwards] if len(keys) == len(_TIE_BREAKERS) else _order(keys, backwards=backwards)
    return statement.order_by(*order).limit(query.count + 1)


_MATCH_COLUMNS = (
    resources.c.resource_type,
    resources.c.id,
    _CONTENT.label("content"),
    resources.c.patient_id,
)
# Every order ends with these, and without `_sort` is made of them alone.
_TIE_BREAKERS = [_Key(resources.c.resource_type, False, False), _Key(resources.c.id, False, False)]
_BY_KEY = {backwards: _order(_TIE_BREAKERS, backwards=backwards) for backwards in (False, True)}


def count_statement(query: SearchQuery, scope: Scope) -> Select[Any]:
    return select(func.count()).select_from(resources).where(*_filters(query, scope))


def _page_table(keys: Sequence[tuple[str, str]]) -> Any:
    types = literal([k[0] for k in keys], ARRAY(Text))
    ids = literal([k[1] for k in keys], ARRAY(Text))
    rows = func.unnest(types, ids).table_valued("resource_type", "id").render_derived("page_rows")
    return select(rows.c.resource_type, rows.c.id).cte("page")


def _include_select(include: Include, base: Any) -> list[Select[Any]]:
    """(type, id) of what `include` adds to the resources in `base` (a table of resource_type, id)."""
    source_type = include.source_type
    assert source_type is not None
    if include.parameter is None:
        parameters = [p for p in parameters_for(source_type).values() if p.type == "reference"]
        return [
            select_
            for parameter in parameters
            for select_ in _include_select(Include(source_type, parameter, None, include.iterate), base)
        ]
    parameter = include.parameter
    reference = search_reference.alias()
    conditions: list[ColumnElement[bool]] = [
        reference.c.resource_type == source_type,
        reference.c.resource_type == base.c.resource_type,
        reference.c.resource_id == base.c.id,
        reference.c.param == parameter.code,
    ]
    targets = (include.target_type,) if include.target_type else parameter.targets
    if is_canonical(source_type, parameter.code):
        url_rows, joined = _canonical_targets(reference, targets)
        return [select(url_rows.c.resource_type, url_rows.c.resource_id).where(*conditions, joined)]
    conditions.append(reference.c.url.is_(None))
    if include.target_type is not None:
        conditions.append(reference.c.target_type == include.target_type)
    return [select(reference.c.target_type, reference.c.target_id).where(*conditions)]


def _revinclude_select(include: Include, base: Any) -> list[Select[Any]]:
    """(type, id) of the resources that refer to those in `base` as `include` says."""
    reference = search_reference.alias()
    url_rows = search_uri.alias()
    by_url = reference.c.url.in_(
        select(url_rows.c.uri).where(
            url_rows.c.resource_type == base.c.resource_type,
            url_rows.c.resource_id == base.c.id,
            url_rows.c.param == "url",
        )
    )
    local = and_(
        reference.c.url.is_(None),
        reference.c.target_type == base.c.resource_type,
        reference.c.target_id == base.c.id,
    )
    columns = (reference.c.resource_type, reference.c.resource_id)
    if include.parameter is None:
        conditions = [] if include.source_type is None else [reference.c.resource_type == include.source_type]
        return [select(*columns).where(*conditions, local), select(*columns).where(*conditions, by_url)]
    assert include.source_type is not None
    conditions = [
        reference.c.resource_type == include.source_type,
        reference.c.param == include.parameter.code,
    ]
    if include.target_type is not None:
        conditions.append(base.c.resource_type == include.target_type)
    if is_canonical(include.source_type, include.parameter.code):
        return [select(*columns).where(*conditions, by_url)]
    return [select(*columns).where(*conditions, local)]


def _follow(includes: Sequence[Include], revincludes: Sequence[Include], base: Any) -> list[Select[Any]]:
    selects: list[Select[Any]] = []
    for include in includes:
        selects += _include_select(include, base)
    for include in revincludes:
        selects += _revinclude_select(include, base)
    return selects


def _shown(found: Any, scope: Scope) -> Select[Any]:
    """The live rows among `found` (a table of type and id) that the requester may read."""
    return select(resources.c.resource_type, resources.c.id).where(
        tuple_(resources.c.resource_type, resources.c.id).in_(select(found.c[0], found.c[1])),
        resources.c.deleted.is_(False),
        *scope.visibility(None, "r"),
    )


def include_statement(
    query: SearchQuery, page: Sequence[tuple[str, str]], scope: Scope
) -> Select[Any] | None:
    """Everything `_include`/`_revinclude` add to a page, in one statement; None when nothing is asked.

    The first level follows the non-iterating includes from the page; `:iterate` ones (one level) then
    follow from the page and that first level together.
    """
    first = [i for i in query.includes if not i.iterate], [i for i in query.revincludes if not i.iterate]
    iterate = [i for i in query.includes if i.iterate], [i for i in query.revincludes if i.iterate]
    if not page or not any((*first, *iterate)):
        return None
    page_rows = _page_table(page)
    level_one = _follow(*first, page_rows)
    found = list(level_one)
    if any(iterate):
        # Only what the first level may show is followed further: a resource the requester may not read
        # must not lead to one it may.
        shown = _shown(union(*level_one).subquery("level_one"), scope) if level_one else None
        starts = [select(page_rows.c.resource_type, page_rows.c.id), *([shown] if shown is not None else [])]
        base = union(*starts).subquery("base")
        found += _follow(*iterate, base)
    if not found:
        return None
    targets = union(*found).subquery("targets")
    return (
        select(resources.c.resource_type, resources.c.id, _CONTENT.label("content"), resources.c.patient_id)
        .where(
            tuple_(resources.c.resource_type, resources.c.id).in_(select(targets.c[0], targets.c[1])),
            tuple_(resources.c.resource_type, resources.c.id).not_in(
                select(page_rows.c.resource_type, page_rows.c.id)
            ),
            resources.c.deleted.is_(False),
            *scope.visibility(None, "r"),
        )
        .order_by(resources.c.resource_type, resources.c.id)
        .limit(_MAX_INCLUDES)
    )


# --- running -------------------------------------------------------------------------------------


async def _guarded(run: Callable[[], Any]) -> Any:
    try:
        return await run()
    except DBAPIError as error:
        # Class 22 is "data exception": a value the database cannot compare (an out-of-range number).
        code = getattr(getattr(error, "orig", None), "sqlstate", None) or getattr(
            getattr(error, "orig", None), "pgcode", None
        )
        if isinstance(code, str) and code.startswith("22"):
            raise InvalidSearch(Issue(f"A search value is out of range: {error.orig}")) from None
        raise


async def search_page(
    connection: AsyncConnection, query: SearchQuery, scope: Scope, position: Position | None
) -> SearchPage:
    statement = page_statement(query, scope, position)
    rows = (await _guarded(lambda: connection.execute(statement))).all()
    backwards = position is not None and position.backwards
    sort_count = len(query.sort)
    matches = [
        Match(
            row.resource_type,
            row.id,
            row.content.encode(),
            (*(row[4 + i] for i in range(sort_count)), row.resource_type, row.id),
            row.patient_id,
        )
        for row in rows[: query.count]
    ]
    if backwards:
        matches.reverse()
    return SearchPage(matches, more=len(rows) > query.count, backwards=backwards)


async def count_matches(connection: AsyncConnection, query: SearchQuery, scope: Scope) -> int:
    statement = count_statement(query, scope)
    return int((await _guarded(lambda: connection.execute(statement))).scalar_one())


async def estimate_matches(connection: AsyncConnection, query: SearchQuery, scope: Scope) -> int:
    """The planner's estimate of the number of matches (`_total=estimate`): no rows are read."""
    compiled = count_statement(query, scope).compile(
        dialect=connection.dialect, compile_kwargs={"render_postcompile": True}
    )
    names = compiled.positiontup or []
    parameters = tuple(compiled.params[name] for name in names)
    result = await _guarded(
        lambda: connection.exec_driver_sql("EXPLAIN (FORMAT JSON) " + str(compiled), parameters)
    )
    plan = result.scalar_one()
    document = orjson.loads(plan) if isinstance(plan, str | bytes) else plan
    node = document[0]["Plan"]
    # The count's aggregate estimates one row; the rows it counts are its input's.
    while node.get("Plans") and node.get("Node Type") == "Aggregate":
        node = node["Plans"][0]
    return int(node.get("Plan Rows", 0))


async def included(
    connection: AsyncConnection, query: SearchQuery, page: Sequence[tuple[str, str]], scope: Scope
) -> list[Included]:
    statement = include_statement(query, page, scope)
    if statement is None:
        return []
    rows = (await _guarded(lambda: connection.execute(statement))).all()
    return [Included(row.resource_type, row.id, row.content.encode(), row.patient_id) for row in rows]
