"""Search index rows, written in the same transaction as the resource they index."""

from __future__ import annotations

from sqlalchemy import delete, literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncConnection

from service.storage.indexing.rows import INDEX_TABLES


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
