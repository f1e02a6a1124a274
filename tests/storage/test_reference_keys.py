"""The existence checks of references and ids take any number of keys: a resource may name tens of
thousands of others, more than the driver's 32767 bind parameters."""

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from service.storage.repository import ResourceRepository

PATIENT = {"resourceType": "Patient", "name": [{"family": "Rivera"}]}
MANY = 20_000


async def test_existing_answers_for_twenty_thousand_keys(
    anonymous_client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    async with engine.begin() as connection:
        repository = ResourceRepository(connection)
        live = await repository.create("Patient", PATIENT)
        gone = await repository.create("Patient", PATIENT)
        await repository.delete("Patient", gone.id)
    wanted = [("Patient", f"missing-{n}") for n in range(MANY)] + [("Patient", live.id), ("Patient", gone.id)]

    async with engine.begin() as connection:
        found = await ResourceRepository(connection).existing(wanted)

    assert found == {("Patient", live.id)}


async def test_stored_ids_answers_for_forty_thousand_ids(
    anonymous_client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    async with engine.begin() as connection:
        repository = ResourceRepository(connection)
        stored = await repository.create("Patient", PATIENT)
        taken = await repository.stored_ids("Patient", [f"free-{n}" for n in range(2 * MANY)] + [stored.id])

    assert taken == {stored.id}


async def test_a_checked_reference_blocks_a_delete_but_not_other_writers(
    anonymous_client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    async with engine.begin() as connection:
        target = await ResourceRepository(connection).create("Patient", PATIENT)
    row = "SELECT 1 FROM resources WHERE resource_type = 'Patient' AND id = :id"

    async with engine.begin() as checking:
        key = ("Patient", target.id)
        assert await ResourceRepository(checking).existing([key]) == {key}
        async with engine.connect() as other:
            # An update (and another check, taking the same lock) goes through...
            await other.execute(text(f"{row} FOR NO KEY UPDATE NOWAIT"), {"id": target.id})
            await other.rollback()
            # ...a delete, which locks the row FOR UPDATE first, waits for the check's transaction.
            with pytest.raises(DBAPIError, match="could not obtain lock"):
                await other.execute(text(f"{row} FOR UPDATE NOWAIT"), {"id": target.id})
