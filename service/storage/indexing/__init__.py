"""Search index rows, written in the same transaction as the resource they index."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection


async def write_indexes(
    connection: AsyncConnection, *, resource_type: str, resource_id: str, content: dict[str, Any]
) -> None:
    """Replace the index rows of one resource with those extracted from `content`."""


async def delete_indexes(connection: AsyncConnection, *, resource_type: str, resource_id: str) -> None:
    """Remove every index row of one resource (it was deleted)."""
