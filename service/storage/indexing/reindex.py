"""Rebuild the search index rows of stored resources, after the parameter definitions or extraction change.

Resources are read in keyset batches on `(resource_type, id)`; each batch's rows are deleted and written
again in the caller's transaction, so a batch is all or nothing and a search never sees it half done.
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import Text, cast, delete, insert, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from service.storage.indexing.rows import INDEX_TABLES, index_rows, indexed_values
from service.storage.tables import resources

Key = tuple[str, str]


async def reindex_batch(
    connection: AsyncConnection, *, resource_type: str | None, after: Key | None, limit: int
) -> list[Key]:
    """Re-extract the index rows of up to `limit` live resources after `after`; returns their keys."""
    statement = select(
        resources.c.resource_type,
        resources.c.id,
        resources.c.patient_id,
        cast(resources.c.content, Text).label("content"),
    ).where(resources.c.deleted.is_(False))
    if resource_type is not None:
        statement = statement.where(resources.c.resource_type == resource_type)
    if after is not None:
        statement = statement.where(tuple_(resources.c.resource_type, resources.c.id) > tuple_(*after))
    statement = statement.order_by(resources.c.resource_type, resources.c.id).limit(limit)
    rows = (await connection.execute(statement)).all()
    if not rows:
        return []
    keys = [(row.resource_type, row.id) for row in rows]
    grouped: dict[Any, list[tuple[Any, ...]]] = {}
    for row in rows:
        values = indexed_values(orjson.loads(row.content))
        for table, table_rows in index_rows(
            row.resource_type, row.id, values, patient_id=row.patient_id
        ).items():
            grouped.setdefault(table, []).extend(table_rows)
    for table in INDEX_TABLES:
        await connection.execute(
            delete(table).where(tuple_(table.c.resource_type, table.c.resource_id).in_(keys))
        )
    for table, table_rows in grouped.items():
        columns = table.columns.keys()
        await connection.execute(insert(table), [dict(zip(columns, row, strict=True)) for row in table_rows])
    return keys
