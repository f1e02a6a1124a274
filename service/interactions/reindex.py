"""Rebuild the search indexes (`ipt-fhir reindex`), one transaction per batch.

Writes that happen meanwhile index themselves as usual; a batch locks nothing beyond the rows it rewrites.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from service.storage.indexing.reindex import Key, reindex_batch


async def reindex(engine: AsyncEngine, *, resource_type: str | None = None, batch_size: int = 500) -> int:
    """Re-extract the index rows of every live resource (of one type, if given); returns how many."""
    done = 0
    after: Key | None = None
    while True:
        async with engine.begin() as connection:
            keys = await reindex_batch(connection, resource_type=resource_type, after=after, limit=batch_size)
        if not keys:
            return done
        done += len(keys)
        after = keys[-1]
