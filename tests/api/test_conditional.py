"""Conditional create, update and delete over HTTP.

https://hl7.org/fhir/R4/http.html#ccreate, #cond-update and #cdelete: no match, one match and several
matches each have their outcome, and concurrent conditional creates with the same criteria make one
resource.
"""

import asyncio

import httpx
from sqlalchemy import Table, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from service.storage.tables import resource_versions, resources
from tests.factories import FHIR_JSON, patient

MRN = "http://hospital.example/mrn"


def with_mrn(value: str, **extra: object) -> dict[str, object]:
    return patient(identifier=[{"system": MRN, "value": value}], **extra)


async def count(engine: AsyncEngine, table: Table = resources) -> int:
    """Rows of clinical resources (audit records of the requests aside)."""
    statement = select(func.count()).select_from(table).where(table.c.resource_type != "AuditEvent")
    async with engine.connect() as connection:
        return int((await connection.execute(statement)).scalar_one())


class TestConditionalCreate:
    async def test_no_match_creates(self, client: httpx.AsyncClient) -> None:
        response = await client.post(
            "/fhir/Patient", json=with_mrn("1"), headers={**FHIR_JSON, "If-None-Exist": f"identifier={MRN}|1"}
        )

        assert response.status_code == 201

    async def test_one_match_returns_it_and_writes_nothing(
        self, client: httpx.AsyncClient, engine: AsyncEngine
    ) -> None:
        headers = {**FHIR_JSON, "If-None-Exist": f"identifier={MRN}|1"}
        first = await client.post("/fhir/Patient", json=with_mrn("1"), headers=headers)
        versions = await count(engine, resource_versions)

        second = await client.post("/fhir/Patient", json=with_mrn("1", gender="female"), headers=headers)

        assert second.status_code == 200
        assert second.json()["id"] == first.json()["id"]
        assert "gender" not in second.json()
        assert second.headers["location"].endswith(f"/Patient/{first.json()['id']}/_history/1")
        assert await count(engine, resource_versions) == versions

    async def test_several_matches_are_412(self, client: httpx.AsyncClient, engine: AsyncEngine) -> None:
        for _ in range(2):
            await client.post("/fhir/Patient", json=with_mrn("1"), headers=FHIR_JSON)

        response = await client.post(
            "/fhir/Patient", json=with_mrn("1"), headers={**FHIR_JSON, "If-None-Exist": f"identifier={MRN}|1"}
        )

        assert response.status_code == 412
        assert response.json()["issue"][0]["expression"] == ["If-None-Exist"]
        assert await count(engine) == 2

    async def test_unknown_parameter_is_400(self, client: httpx.AsyncClient, engine: AsyncEngine) -> None:
        response = await client.post(
            "/fhir/Patient", json=with_mrn("1"), headers={**FHIR_JSON, "If-None-Exist": "shoe-size=42"}
        )

        assert response.status_code == 400
        assert response.json()["issue"][0]["expression"] == ["If-None-Exist"]
        assert await count(engine) == 0

    async def test_twenty_concurrent_creates_make_one_resource(
        self, client: httpx.AsyncClient, engine: AsyncEngine
    ) -> None:
        headers = {**FHIR_JSON, "If-None-Exist": f"identifier={MRN}|race"}

        async def attempt() -> httpx.Response:
            return await client.post("/fhir/Patient", json=with_mrn("race"), headers=headers)

        responses = await asyncio.gather(*(attempt() for _ in range(20)))

        assert sorted(r.status_code for r in responses) == [200] * 19 + [201]
        assert len({r.json()["id"] for r in responses}) == 1
        assert await count(engine) == 1


class TestConditionalUpdate:
    async def test_no_match_creates(self, client: httpx.AsyncClient) -> None:
        response = await client.put(
            f"/fhir/Patient?identifier={MRN}|1", json=with_mrn("1"), headers=FHIR_JSON
        )

        assert response.status_code == 201
        assert response.headers["etag"] == 'W/"1"'

    async def test_no_match_with_body_id_creates_under_it(self, client: httpx.AsyncClient) -> None:
        response = await client.put(
            f"/fhir/Patient?identifier={MRN}|1", json=with_mrn("1", id="mine"), headers=FHIR_JSON
        )

        assert response.status_code == 201
        assert response.json()["id"] == "mine"

    async def test_one_match_is_updated(self, client: httpx.AsyncClient) -> None:
        created = (await client.post("/fhir/Patient", json=with_mrn("1"), headers=FHIR_JSON)).json()

        response = await client.put(
            f"/fhir/Patient?identifier={MRN}|1", json=with_mrn("1", gender="female"), headers=FHIR_JSON
        )

        assert response.status_code == 200
        assert response.json()["id"] == created["id"]
        assert response.json()["meta"]["versionId"] == "2"

    async def test_several_matches_are_412(self, client: httpx.AsyncClient) -> None:
        for _ in range(2):
            await client.post("/fhir/Patient", json=with_mrn("1"), headers=FHIR_JSON)

        response = await client.put(
            f"/fhir/Patient?identifier={MRN}|1", json=with_mrn("1"), headers=FHIR_JSON
        )

        assert response.status_code == 412

    async def test_body_id_of_another_resource_is_400(self, client: httpx.AsyncClient) -> None:
        await client.post("/fhir/Patient", json=with_mrn("1"), headers=FHIR_JSON)

        response = await client.put(
            f"/fhir/Patient?identifier={MRN}|1", json=with_mrn("1", id="other"), headers=FHIR_JSON
        )

        assert response.status_code == 400
        assert response.json()["issue"][0]["expression"] == ["Patient.id"]

    async def test_without_criteria_is_400(self, client: httpx.AsyncClient) -> None:
        response = await client.put("/fhir/Patient", json=with_mrn("1"), headers=FHIR_JSON)

        assert response.status_code == 400
        assert response.json()["issue"][0]["expression"] == ["criteria"]

    async def test_stale_if_match_is_412(self, client: httpx.AsyncClient) -> None:
        await client.post("/fhir/Patient", json=with_mrn("1"), headers=FHIR_JSON)

        response = await client.put(
            f"/fhir/Patient?identifier={MRN}|1",
            json=with_mrn("1"),
            headers={**FHIR_JSON, "If-Match": 'W/"7"'},
        )

        assert response.status_code == 412


class TestConditionalDelete:
    async def test_one_match_is_deleted(self, client: httpx.AsyncClient) -> None:
        created = (await client.post("/fhir/Patient", json=with_mrn("1"), headers=FHIR_JSON)).json()

        response = await client.delete(f"/fhir/Patient?identifier={MRN}|1")

        assert response.status_code == 204
        assert (await client.get(f"/fhir/Patient/{created['id']}")).status_code == 410

    async def test_no_match_is_404(self, client: httpx.AsyncClient) -> None:
        assert (await client.delete(f"/fhir/Patient?identifier={MRN}|1")).status_code == 404

    async def test_several_matches_are_412_and_nothing_is_deleted(
        self, client: httpx.AsyncClient, engine: AsyncEngine
    ) -> None:
        for _ in range(2):
            await client.post("/fhir/Patient", json=with_mrn("1"), headers=FHIR_JSON)

        response = await client.delete(f"/fhir/Patient?identifier={MRN}|1")

        assert response.status_code == 412
        assert await count(engine, resource_versions) == 2

    async def test_by_id_parameter(self, client: httpx.AsyncClient) -> None:
        await client.put("/fhir/Patient/p1", json=patient(id="p1"), headers=FHIR_JSON)
        await client.put("/fhir/Patient/p2", json=patient(id="p2"), headers=FHIR_JSON)

        # An id has no system: one asked for matches nothing, none asked for (`|p1`) matches.
        assert (await client.delete("/fhir/Patient?_id=http://x.org|p1")).status_code == 404
        assert (await client.delete("/fhir/Patient?_id=p1")).status_code == 204
        assert (await client.get("/fhir/Patient/p1")).status_code == 410
        assert (await client.delete("/fhir/Patient?_id=|p2")).status_code == 204
        assert (await client.get("/fhir/Patient/p2")).status_code == 410
