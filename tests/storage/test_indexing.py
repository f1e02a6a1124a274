"""Index rows follow the current version: written with it, replaced on update, removed on delete."""

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from service.storage.indexing.rows import (
    COLUMN_PARAMETERS,
    search_date,
    search_reference,
    search_string,
    search_token,
)
from tests.factories import FHIR_JSON, care_plan, patient


async def _family_rows(engine: AsyncEngine, resource_id: str) -> list[str]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            select(search_string.c.value).where(
                search_string.c.resource_id == resource_id, search_string.c.param == "family"
            )
        )
        return sorted(rows.scalars())


class TestIndexRows:
    async def test_written_replaced_and_removed(self, client: httpx.AsyncClient, engine: AsyncEngine) -> None:
        created = (
            await client.post("/fhir/Patient", json=patient(family="Müller"), headers=FHIR_JSON)
        ).json()
        url = f"/fhir/Patient/{created['id']}"
        assert await _family_rows(engine, created["id"]) == ["muller"]
        await client.put(url, json={**created, "name": [{"family": "Ørsted"}]}, headers=FHIR_JSON)
        assert await _family_rows(engine, created["id"]) == ["ørsted"]
        await client.delete(url)
        assert await _family_rows(engine, created["id"]) == []

    async def test_rows_carry_the_patient_compartment(
        self, client: httpx.AsyncClient, engine: AsyncEngine
    ) -> None:
        # The plan may only refer to a patient that exists.
        await client.put("/fhir/Patient/p7", json=patient(id="p7"), headers=FHIR_JSON)
        created = (
            await client.post("/fhir/CarePlan", json=care_plan(subject="Patient/p7"), headers=FHIR_JSON)
        ).json()
        async with engine.connect() as connection:
            references = (
                await connection.execute(
                    select(
                        search_reference.c.param, search_reference.c.target_id, search_reference.c.patient_id
                    ).where(search_reference.c.resource_id == created["id"])
                )
            ).all()
            statuses = (
                (
                    await connection.execute(
                        select(search_token.c.code).where(
                            search_token.c.resource_id == created["id"], search_token.c.param == "status"
                        )
                    )
                )
                .scalars()
                .all()
            )
        assert ("subject", "p7", "p7") in references
        assert ("patient", "p7", "p7") in references
        assert statuses == ["draft"]

    async def test_id_and_last_updated_have_no_rows(
        self, client: httpx.AsyncClient, engine: AsyncEngine
    ) -> None:
        # The resource row holds both; the searches that read them there are in tests/api/test_search.py.
        created = (await client.post("/fhir/Patient", json=patient(), headers=FHIR_JSON)).json()
        await client.put(
            f"/fhir/Patient/{created['id']}", json={**created, "gender": "male"}, headers=FHIR_JSON
        )
        async with engine.connect() as connection:
            params = set(
                (
                    await connection.execute(
                        select(search_token.c.param)
                        .where(search_token.c.resource_id == created["id"])
                        .union_all(
                            select(search_date.c.param).where(search_date.c.resource_id == created["id"])
                        )
                    )
                ).scalars()
            )
        assert "gender" in params
        assert params.isdisjoint(COLUMN_PARAMETERS)
