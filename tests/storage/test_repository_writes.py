"""`create_many` (the writes of a transaction) stores exactly what `create` stores, one by one.

`create` inserts with SQL, `create_many` COPYs the history and index rows; a resource must not read,
version or search differently depending on which wrote it.
"""

from typing import Any

import httpx
from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncEngine

from service.storage.indexing.rows import INDEX_TABLES
from service.storage.repository import ResourceRepository
from service.storage.tables import resource_versions, resources

RESPONSE = {
    "resourceType": "QuestionnaireResponse",
    "status": "in-progress",
    "authored": "2024-05-31T10:00:00+02:00",
    "subject": {"reference": "Patient/p1"},
    "identifier": {"system": "urn:example:qr", "value": "Ä-1"},
    "item": [{"linkId": "mood", "answer": [{"valueInteger": 4}]}],
}
_KEYS = {"id", "resource_id", "seq", "last_updated", "content"}


async def _rows(engine: AsyncEngine, table: Table, resource_id: str) -> list[dict[str, Any]]:
    column = table.c.id if "id" in table.c else table.c.resource_id
    async with engine.connect() as connection:
        result = await connection.execute(select(table).where(column == resource_id))
        # A Patient is its own compartment: its patient_id is its id, a placeholder like the id.
        rows = [
            {k: "<id>" if v == resource_id else v for k, v in row._mapping.items() if k not in _KEYS}
            for row in result
        ]
    return sorted(rows, key=repr)


async def test_create_many_writes_the_rows_create_writes(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    async with engine.begin() as connection:
        repository = ResourceRepository(connection)
        one = await repository.create("QuestionnaireResponse", RESPONSE)
        [many] = await repository.create_many([("QuestionnaireResponse", "qr-many", RESPONSE)])
    for table in (resources, resource_versions, *INDEX_TABLES):
        assert await _rows(engine, table, many.id) == await _rows(engine, table, one.id), table.name
    assert len(await _rows(engine, resource_versions, many.id)) == 1
    first = (await client.get(f"/fhir/QuestionnaireResponse/{one.id}/_history/1")).json()
    second = (await client.get(f"/fhir/QuestionnaireResponse/{many.id}/_history/1")).json()
    assert {**second, "id": one.id, "meta": first["meta"]} == first
    found = await client.get("/fhir/QuestionnaireResponse", params={"identifier": "urn:example:qr|Ä-1"})
    assert {e["resource"]["id"] for e in found.json()["entry"]} == {one.id, many.id}


async def test_create_many_as_the_first_write_rolls_back_with_its_transaction(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        transaction = await connection.begin()
        await ResourceRepository(connection).create_many(
            [("QuestionnaireResponse", "qr-rolled-back", RESPONSE)]
        )
        await transaction.rollback()
    for table in (resources, resource_versions, *INDEX_TABLES):
        assert await _rows(engine, table, "qr-rolled-back") == [], table.name


async def test_an_update_leaves_the_rows_a_create_of_its_content_writes(engine: AsyncEngine) -> None:
    first = {**RESPONSE, "subject": {"reference": "Patient/p0"}, "status": "in-progress"}
    async with engine.begin() as connection:
        repository = ResourceRepository(connection)
        fresh = await repository.create("QuestionnaireResponse", RESPONSE)
        changed = await repository.create("QuestionnaireResponse", first)
        await repository.update("QuestionnaireResponse", changed.id, {**RESPONSE, "id": changed.id})
    for table in (resources, *INDEX_TABLES):
        assert await _rows(engine, table, changed.id) == [
            {**row, "version_id": 2} if "version_id" in row else row
            for row in await _rows(engine, table, fresh.id)
        ], table.name
    history = await _rows(engine, resource_versions, changed.id)
    assert [(row["version_id"], row["method"], row["patient_id"]) for row in history] == [
        (1, "POST", "p0"),
        (2, "PUT", "p1"),
    ]


async def test_an_update_that_creates_writes_the_rows_a_create_writes(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        repository = ResourceRepository(connection)
        one = await repository.create("QuestionnaireResponse", RESPONSE)
        put = await repository.update("QuestionnaireResponse", "qr-put", {**RESPONSE, "id": "qr-put"})
    assert put.created
    for table in (resources, *INDEX_TABLES):
        assert await _rows(engine, table, put.id) == await _rows(engine, table, one.id), table.name
    [history] = await _rows(engine, resource_versions, put.id)
    assert (history["version_id"], history["method"], history["patient_id"]) == (1, "PUT", "p1")
