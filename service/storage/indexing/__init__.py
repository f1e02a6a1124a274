"""Search index rows, written in the same transaction as the resource they index."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, insert, literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncConnection

from service.fhir.extraction import extract_index_values
from service.storage.indexing.rows import INDEX_TABLES, index_rows


async def write_indexes(
    connection: AsyncConnection,
    *,
    resource_type: str,
    resource_id: str,
    content: dict[str, Any],
    patient_id: str | None = None,
    replace: bool = True,
) -> None:
    """Replace the index rows of one resource with those extracted from `content`.

    `replace=False` is for a resource that has just been created and so has no rows yet.
    """
    if replace:
        await delete_indexes(connection, resource_type=resource_type, resource_id=resource_id)
    values = extract_index_values(content)
    for table, rows in index_rows(resource_type, resource_id, values, patient_id=patient_id).items():
        await connection.execute(insert(table), rows)


async def delete_indexes(connection: AsyncConnection, *, resource_type: str, resource_id: str) -> None:
    """Remove every index row of one resource, in one round trip."""
    deletes = [
        delete(table)
        .where(table.c.resource_type == resource_type, table.c.resource_id == resource_id)
        .returning(literal(1))
        .cte(f"deleted_{table.name}")
        for table in INDEX_TABLES
    ]
    # Data-modifying CTEs run whether or not the outer query reads their rows.
    statement = union_all(*(select(cte.c[0]) for cte in deletes)).limit(0)
    await connection.execute(statement)
