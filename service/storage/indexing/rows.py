"""The search index tables, and the rows one resource's index values become.

One table per search parameter type (https://hl7.org/fhir/R4/search.html#ptypes), each row one value of
`service.fhir.extraction`, keyed by `(resource_type, resource_id, param)`. Rows describe the current version
of a resource only: a write deletes the resource's rows and inserts the new ones in the same transaction.
There is no primary key: nothing addresses a single row, and a resource's rows are distinct by construction.
`patient_id` is the resource's patient compartment, as on the resource tables, so the index tables can be
distributed by patient together with them.

- `search_token`: `system` (NULL: none), `code` (NULL: a text-only row), `text` (normalised, for `:text`).
- `search_string`: `value` (case folded, accents stripped) for starts-with and `:contains`; `exact`.
- `search_reference`: `target_type`, `target_id`; `url` is NULL for a reference to this server, else the
  absolute URL or the canonical URL, with `version` for `url|version`.
- `search_date`: the half-open range `[low, high)`; an unbounded end is stored as `-infinity`/`infinity`
  (asyncpg encodes `datetime.min`/`datetime.max` in UTC as those, and reads them back as the naive
  `datetime.min`/`datetime.max`), so comparisons need no NULL handling.
- `search_uri`: `uri`. `search_number`: `value` numeric, and `system`/`code` of a Quantity's unit.

The `text_pattern_ops` indexes serve starts-with (`LIKE 'abc%'`) whatever the database collation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    FromClause,
    Index,
    Numeric,
    Table,
    Text,
    cast,
    func,
    literal_column,
    null,
    select,
)

from service.fhir.extraction import (
    CompiledParameter,
    DateValue,
    IndexValue,
    NumberValue,
    ReferenceValue,
    StringValue,
    TokenValue,
    UriValue,
    compiled_parameters,
    extract_with,
)
from service.storage.tables import metadata, resources

NEGATIVE_INFINITY = datetime.min.replace(tzinfo=UTC)
INFINITY = datetime.max.replace(tzinfo=UTC)


def _key_columns() -> list[Column[Any]]:
    return [
        Column("resource_type", Text, nullable=False),
        Column("resource_id", Text, nullable=False),
        Column("param", Text, nullable=False),
        Column("patient_id", Text, nullable=True),
    ]


search_token = Table(
    "search_token",
    metadata,
    *_key_columns(),
    Column("system", Text, nullable=True),
    Column("code", Text, nullable=True),
    Column("text", Text, nullable=True),
)

search_string = Table(
    "search_string",
    metadata,
    *_key_columns(),
    Column("value", Text, nullable=False),
    Column("exact", Text, nullable=False),
)

search_reference = Table(
    "search_reference",
    metadata,
    *_key_columns(),
    Column("target_type", Text, nullable=True),
    Column("target_id", Text, nullable=True),
    Column("url", Text, nullable=True),
    Column("version", Text, nullable=True),
)

search_date = Table(
    "search_date",
    metadata,
    *_key_columns(),
    Column("low", DateTime(timezone=True), nullable=False),
    Column("high", DateTime(timezone=True), nullable=False),
)

search_uri = Table(
    "search_uri",
    metadata,
    *_key_columns(),
    Column("uri", Text, nullable=False),
)

search_number = Table(
    "search_number",
    metadata,
    *_key_columns(),
    Column("value", Numeric, nullable=False),
    Column("system", Text, nullable=True),
    Column("code", Text, nullable=True),
)

INDEX_TABLES: tuple[Table, ...] = (
    search_token,
    search_string,
    search_reference,
    search_date,
    search_uri,
    search_number,
)

# Replacing a resource's rows deletes by (resource_type, resource_id).
for _table in INDEX_TABLES:
    Index(f"ix_{_table.name}_resource", _table.c.resource_type, _table.c.resource_id)

Index(
    "ix_search_token_value",
    search_token.c.resource_type,
    search_token.c.param,
    search_token.c.code,
    search_token.c.system,
)
# Only codings with a display, and CodeableConcept texts, have a text: most token rows (`status`, `_id`,
# identifiers) would be index entries that no search reaches, each written with its row. `LIKE` is strict, so
# a `:text` search implies `text IS NOT NULL` and can use the partial index; so can `url =` below.
Index(
    "ix_search_token_text",
    search_token.c.resource_type,
    search_token.c.param,
    search_token.c.text,
    postgresql_ops={"text": "text_pattern_ops"},
    postgresql_where=search_token.c.text.is_not(None),
)
Index(
    "ix_search_string_value",
    search_string.c.resource_type,
    search_string.c.param,
    search_string.c.value,
    postgresql_ops={"value": "text_pattern_ops"},
)
# Forward searches (subject=Patient/1) and the reverse direction (_revinclude, _has) both start from the
# target, so one index serves them.
Index(
    "ix_search_reference_target",
    search_reference.c.target_type,
    search_reference.c.target_id,
    search_reference.c.param,
    search_reference.c.resource_type,
)
Index(
    "ix_search_reference_url",
    search_reference.c.url,
    search_reference.c.version,
    postgresql_where=search_reference.c.url.is_not(None),
)
Index(
    "ix_search_date_range",
    search_date.c.resource_type,
    search_date.c.param,
    search_date.c.low,
    search_date.c.high,
)
Index(
    "ix_search_uri_value",
    search_uri.c.resource_type,
    search_uri.c.param,
    search_uri.c.uri,
    postgresql_ops={"uri": "text_pattern_ops"},
)
Index("ix_search_number_value", search_number.c.resource_type, search_number.c.param, search_number.c.value)


# Every resource has exactly one id and one lastUpdated, and its row in `resources` holds both: as index rows
# they would be two more rows (and five index entries) written with every resource, saying nothing the
# resource row does not. Searches and conditional criteria read them there, through `COLUMN_ROWS`.
COLUMN_PARAMETERS = frozenset({"_id", "_lastUpdated"})


def _column_rows() -> dict[str, FromClause]:
    """What stands in for the index rows of `COLUMN_PARAMETERS`, which have none.

    Each live resource row gives the row its value would have had, with the columns of `search_token` and
    `search_date`: a clause on them is then written like any other, at the end of a chain, in `_has`, with
    `:not` or `:missing`. `meta.lastUpdated` is stated to the millisecond, so the range is that millisecond.
    """
    own = resources.alias("own_row")
    key = (own.c.resource_type, own.c.id.label("resource_id"))
    live = own.c.deleted.is_(False)
    no_text = cast(null(), Text)
    ids = select(
        *key,
        literal_column("'_id'").label("param"),
        own.c.patient_id,
        no_text.label("system"),
        own.c.id.label("code"),
        no_text.label("text"),
    ).where(live)
    moment = func.date_trunc("milliseconds", own.c.last_updated, type_=DateTime(timezone=True))
    updated = select(
        *key,
        literal_column("'_lastUpdated'").label("param"),
        own.c.patient_id,
        moment.label("low"),
        (moment + timedelta(milliseconds=1)).label("high"),
    ).where(live)
    return {"_id": ids.subquery("id_rows"), "_lastUpdated": updated.subquery("last_updated_rows")}


COLUMN_ROWS = _column_rows()


def indexed_values(resource: dict[str, Any]) -> list[IndexValue]:
    """`extract_index_values` without the values of `COLUMN_PARAMETERS`, which get no rows: not extracting
    them saves their work on every write."""
    return extract_with(_indexed_parameters(resource["resourceType"]), resource)


@cache
def _indexed_parameters(resource_type: str) -> tuple[CompiledParameter, ...]:
    return tuple(p for p in compiled_parameters(resource_type) if p.parameter.code not in COLUMN_PARAMETERS)


def table_for(value: IndexValue) -> Table:
    """The index table a value is stored in."""
    return _TABLES[type(value)]


_TABLES: Mapping[type, Table] = {
    TokenValue: search_token,
    StringValue: search_string,
    ReferenceValue: search_reference,
    DateValue: search_date,
    UriValue: search_uri,
    NumberValue: search_number,
}


def index_rows(
    resource_type: str,
    resource_id: str,
    values: Iterable[IndexValue],
    *,
    patient_id: str | None = None,
) -> dict[Table, list[tuple[Any, ...]]]:
    """The rows to insert for one resource's index values, grouped by table (tables without rows left out).
    Values of `COLUMN_PARAMETERS` get none.

    Each row is a tuple in the order of its table's columns (`table.columns`): the four key columns, then
    the value's own. Tuples rather than dicts because a transaction writes them by the thousand, through
    COPY, which takes them as they are.

    Usage:

        for table, rows in index_rows("Goal", "g1", extract_index_values(content)).items():
            await connection.execute(table.insert(), [dict(zip(table.columns.keys(), row)) for row in rows])
    """
    grouped: dict[Table, list[tuple[Any, ...]]] = {}
    for value in values:
        if value.param in COLUMN_PARAMETERS:
            continue
        table, own_columns = _ROW_OF[type(value)]
        row = (resource_type, resource_id, value.param, patient_id, *own_columns(value))
        rows = grouped.get(table)
        if rows is None:
            grouped[table] = [row]
        else:
            rows.append(row)
    return grouped


def _date_columns(value: DateValue) -> tuple[datetime, datetime]:
    return (value.low or NEGATIVE_INFINITY, value.high or INFINITY)


# Per value type: its table, and its columns after the four key columns, in table order.
_ROW_OF: Mapping[type, tuple[Table, Callable[[Any], tuple[Any, ...]]]] = {
    TokenValue: (search_token, lambda v: (v.system, v.code, v.text)),
    StringValue: (search_string, lambda v: (v.value, v.exact)),
    ReferenceValue: (search_reference, lambda v: (v.target_type, v.target_id, v.url, v.version)),
    DateValue: (search_date, _date_columns),
    UriValue: (search_uri, lambda v: (v.uri,)),
    NumberValue: (search_number, lambda v: (v.value, v.system, v.code)),
}
