"""Concurrent writers lose nothing: https://hl7.org/fhir/R4/http.html#concurrency

The requests run at the same time on separate pooled database connections; the row lock taken by every
update makes them queue, so exactly one `If-Match` wins and versions stay 1..n without gaps.
"""

import asyncio

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from service.storage.tables import resource_versions
from tests.factories import FHIR_JSON, patient


async def _versions(engine: AsyncEngine, resource_id: str) -> list[int]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            select(resource_versions.c.version_id)
            .where(resource_versions.c.id == resource_id)
            .order_by(resource_versions.c.version_id)
        )
        return list(rows.scalars())


class TestConcurrentUpdates:
    async def test_same_if_match_twenty_times_one_wins(
        self, client: httpx.AsyncClient, engine: AsyncEngine
    ) -> None:
        created = (await client.post("/fhir/Patient", json=patient(), headers=FHIR_JSON)).json()
        url = f"/fhir/Patient/{created['id']}"

        async def attempt(n: int) -> int:
            body = {**created, "name": [{"family": f"Writer{n}"}]}
            response = await client.put(url, json=body, headers={**FHIR_JSON, "If-Match": 'W/"1"'})
            return response.status_code

        statuses = await asyncio.gather(*(attempt(n) for n in range(20)))
        assert sorted(statuses) == [200] + [412] * 19
        assert await _versions(engine, created["id"]) == [1, 2]

    async def test_unconditional_writers_all_land_without_gaps(
        self, client: httpx.AsyncClient, engine: AsyncEngine
    ) -> None:
        created = (await client.post("/fhir/Patient", json=patient(), headers=FHIR_JSON)).json()
        url = f"/fhir/Patient/{created['id']}"

        async def attempt(n: int) -> str:
            body = {**created, "name": [{"family": f"Writer{n}"}]}
            response = await client.put(url, json=body, headers=FHIR_JSON)
            assert response.status_code == 200
            return str(response.json()["meta"]["versionId"])

        returned = await asyncio.gather(*(attempt(n) for n in range(20)))
        assert sorted(int(v) for v in returned) == list(range(2, 22))
        assert await _versions(engine, created["id"]) == list(range(1, 22))

    async def test_concurrent_create_on_update_of_one_id(
        self, client: httpx.AsyncClient, engine: AsyncEngine
    ) -> None:
        async def attempt(n: int) -> int:
            body = patient(id="contested", family=f"Writer{n}")
            return (await client.put("/fhir/Patient/contested", json=body, headers=FHIR_JSON)).status_code

        statuses = await asyncio.gather(*(attempt(n) for n in range(10)))
        assert statuses.count(201) == 1
        assert statuses.count(200) == 9
        assert await _versions(engine, "contested") == list(range(1, 11))
