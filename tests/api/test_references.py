"""Referential integrity of literal references: https://hl7.org/fhir/R4/references.html#literal

A reference to a served type must name an existing, not deleted resource (422 naming the element); one
that others still reference cannot be deleted (409 naming some of them). Other kinds of reference are not
checked.
"""

from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from service.storage.tables import resource_versions
from tests.factories import FHIR_JSON, care_plan, patient, practitioner


async def versions(engine: AsyncEngine) -> int:
    """Versions of clinical resources (audit records of the attempts aside)."""
    statement = (
        select(func.count())
        .select_from(resource_versions)
        .where(resource_versions.c.resource_type != "AuditEvent")
    )
    async with engine.connect() as connection:
        return int((await connection.execute(statement)).scalar_one())


def care_team(*members: str) -> dict[str, Any]:
    return {
        "resourceType": "CareTeam",
        "status": "active",
        "subject": {"reference": "Patient/p1"},
        "participant": [{"member": {"reference": member}} for member in members],
    }


@pytest.fixture
async def p1(client: httpx.AsyncClient) -> None:
    assert (await client.put("/fhir/Patient/p1", json=patient(id="p1"), headers=FHIR_JSON)).status_code == 201


class TestWrites:
    async def test_missing_target_is_422_and_nothing_is_written(
        self, client: httpx.AsyncClient, engine: AsyncEngine
    ) -> None:
        response = await client.post(
            "/fhir/CarePlan", json=care_plan(subject="Patient/nobody"), headers=FHIR_JSON
        )

        assert response.status_code == 422
        assert response.json()["issue"][0]["expression"] == ["CarePlan.subject"]
        assert await versions(engine) == 0

    async def test_existing_target_is_accepted(self, client: httpx.AsyncClient, p1: None) -> None:
        response = await client.post(
            "/fhir/CarePlan", json=care_plan(subject="Patient/p1"), headers=FHIR_JSON
        )

        assert response.status_code == 201

    async def test_nested_reference_is_named(self, client: httpx.AsyncClient, p1: None) -> None:
        await client.put("/fhir/Practitioner/t1", json=practitioner(id="t1"), headers=FHIR_JSON)

        response = await client.post(
            "/fhir/CareTeam", json=care_team("Practitioner/t1", "Practitioner/t2"), headers=FHIR_JSON
        )

        assert response.status_code == 422
        assert response.json()["issue"][0]["expression"] == ["CareTeam.participant[1].member"]

    async def test_deleted_target_is_422(self, client: httpx.AsyncClient, p1: None) -> None:
        await client.delete("/fhir/Patient/p1")

        response = await client.post(
            "/fhir/CarePlan", json=care_plan(subject="Patient/p1"), headers=FHIR_JSON
        )

        assert response.status_code == 422

    async def test_update_with_missing_target_is_422(self, client: httpx.AsyncClient, p1: None) -> None:
        body = patient(id="p1", generalPractitioner=[{"reference": "Practitioner/none"}])

        response = await client.put("/fhir/Patient/p1", json=body, headers=FHIR_JSON)

        assert response.status_code == 422
        assert response.json()["issue"][0]["expression"] == ["Patient.generalPractitioner[0]"]

    @pytest.mark.parametrize(
        "reference",
        [
            "Group/g1",
            "https://other.example/fhir/Patient/1",
            "urn:uuid:6c1a8a4e-1f0e-4d8c-9f4a-8a6b0b0f2f11",
        ],
    )
    async def test_references_that_are_not_checked(self, client: httpx.AsyncClient, reference: str) -> None:
        response = await client.post("/fhir/CarePlan", json=care_plan(subject=reference), headers=FHIR_JSON)

        assert response.status_code == 201

    async def test_contained_and_logical_references_are_not_checked(self, client: httpx.AsyncClient) -> None:
        body = care_plan(
            subject="#p",
            contained=[{"resourceType": "Patient", "id": "p"}],
            author={"identifier": {"system": "urn:npi", "value": "1"}},
        )

        response = await client.post("/fhir/CarePlan", json=body, headers=FHIR_JSON)

        assert response.status_code == 201

    async def test_a_resource_may_refer_to_itself(self, client: httpx.AsyncClient) -> None:
        body = patient(id="self", link=[{"other": {"reference": "Patient/self"}, "type": "seealso"}])

        response = await client.put("/fhir/Patient/self", json=body, headers=FHIR_JSON)

        assert response.status_code == 201


class TestDeletes:
    async def test_referenced_resource_is_not_deleted(self, client: httpx.AsyncClient, p1: None) -> None:
        plan = (
            await client.post("/fhir/CarePlan", json=care_plan(subject="Patient/p1"), headers=FHIR_JSON)
        ).json()

        response = await client.delete("/fhir/Patient/p1")

        assert response.status_code == 409
        assert f"CarePlan/{plan['id']}" in response.json()["issue"][0]["diagnostics"]
        assert (await client.get("/fhir/Patient/p1")).status_code == 200

    async def test_deleting_the_referrer_first_frees_it(self, client: httpx.AsyncClient, p1: None) -> None:
        plan = (
            await client.post("/fhir/CarePlan", json=care_plan(subject="Patient/p1"), headers=FHIR_JSON)
        ).json()

        assert (await client.delete(f"/fhir/CarePlan/{plan['id']}")).status_code == 204
        assert (await client.delete("/fhir/Patient/p1")).status_code == 204

    async def test_only_a_few_referrers_are_listed(self, client: httpx.AsyncClient, p1: None) -> None:
        for _ in range(7):
            await client.post("/fhir/CarePlan", json=care_plan(subject="Patient/p1"), headers=FHIR_JSON)

        response = await client.delete("/fhir/Patient/p1")

        assert response.status_code == 409
        diagnostics = response.json()["issue"][0]["diagnostics"]
        assert diagnostics.count("CarePlan/") == 5
        assert "and others" in diagnostics
