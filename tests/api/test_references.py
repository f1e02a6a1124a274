"""Referential integrity of literal references: https://hl7.org/fhir/R4/references.html#literal

A reference to a served type must name an existing, not deleted resource (422 naming the element); one
that others still reference cannot be deleted (409 naming some of them). Other kinds of reference are not
checked.
"""

import base64
from typing import Any

import httpx
import orjson
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


# --- malformed references -------------------------------------------------------------------------------
#
# One reader of references (`mappings.references`) for compartments, reference checks, search indexes and
# the IPT mapping; a reference that does not fit the grammar is refused on every write path, so no two of
# them can read one reference two ways (`Patient/p1/Patient/p2` once stored in p1's compartment and shown
# p2 as the client of the plan).

MALFORMED = ["Patient/p1/Patient/p2", "Patient/", "Patient/a b", "Patient/p1/_history/", "Patient?name=x"]
JSON_PATCH = {"Content-Type": "application/json-patch+json"}


async def versions_of(engine: AsyncEngine, resource_type: str) -> int:
    statement = (
        select(func.count())
        .select_from(resource_versions)
        .where(resource_versions.c.resource_type == resource_type)
    )
    async with engine.connect() as connection:
        return int((await connection.execute(statement)).scalar_one())


def refused(response: httpx.Response, expression: str) -> None:
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["expression"] == [expression]
    assert "not a valid reference" in body["issue"][0]["diagnostics"]


@pytest.fixture
async def p1_and_p2(client: httpx.AsyncClient) -> None:
    for resource in (patient(id="p1"), patient(id="p2", family="Bystander")):
        response = await client.put(f"/fhir/Patient/{resource['id']}", json=resource, headers=FHIR_JSON)
        assert response.status_code == 201


@pytest.fixture
async def plan_of_p1(client: httpx.AsyncClient, p1_and_p2: None) -> str:
    response = await client.put("/fhir/CarePlan/plan1", json=care_plan(id="plan1"), headers=FHIR_JSON)
    assert response.status_code == 201
    return "plan1"


class TestMalformedReferences:
    @pytest.mark.parametrize("reference", MALFORMED)
    async def test_create_is_422_naming_the_element_and_nothing_is_stored(
        self, client: httpx.AsyncClient, engine: AsyncEngine, p1_and_p2: None, reference: str
    ) -> None:
        response = await client.post("/fhir/CarePlan", json=care_plan(subject=reference), headers=FHIR_JSON)

        refused(response, "CarePlan.subject")
        assert await versions_of(engine, "CarePlan") == 0

    async def test_update_is_422_and_the_stored_version_stays(
        self, client: httpx.AsyncClient, engine: AsyncEngine, plan_of_p1: str
    ) -> None:
        body = care_plan(id=plan_of_p1, subject="Patient/p1/Patient/p2")

        response = await client.put(f"/fhir/CarePlan/{plan_of_p1}", json=body, headers=FHIR_JSON)

        refused(response, "CarePlan.subject")
        stored = (await client.get(f"/fhir/CarePlan/{plan_of_p1}")).json()
        assert (stored["meta"]["versionId"], stored["subject"]) == ("1", {"reference": "Patient/p1"})
        assert await versions_of(engine, "CarePlan") == 1

    async def test_create_on_update_is_422(
        self, client: httpx.AsyncClient, engine: AsyncEngine, p1_and_p2: None
    ) -> None:
        body = care_plan(id="new", subject="Patient/p1/Patient/p2")

        response = await client.put("/fhir/CarePlan/new", json=body, headers=FHIR_JSON)

        refused(response, "CarePlan.subject")
        assert (await client.get("/fhir/CarePlan/new")).status_code == 404

    async def test_nested_reference_is_named(self, client: httpx.AsyncClient, p1_and_p2: None) -> None:
        body = care_plan(
            activity=[{"detail": {"status": "scheduled", "performer": [{"reference": "Patient/"}]}}]
        )

        response = await client.post("/fhir/CarePlan", json=body, headers=FHIR_JSON)

        refused(response, "CarePlan.activity[0].detail.performer[0]")

    async def test_every_malformed_reference_is_named(
        self, client: httpx.AsyncClient, p1_and_p2: None
    ) -> None:
        body = care_plan(subject="Patient/p1/Patient/p2", author={"reference": "Practitioner/a b"})

        response = await client.post("/fhir/CarePlan", json=body, headers=FHIR_JSON)

        assert response.status_code == 422
        expressions = [issue["expression"] for issue in response.json()["issue"]]
        assert expressions == [["CarePlan.subject"], ["CarePlan.author"]]

    async def test_a_reference_inside_a_contained_resource_is_checked(
        self, client: httpx.AsyncClient, p1_and_p2: None
    ) -> None:
        team = {"resourceType": "CareTeam", "id": "t", "subject": {"reference": "Patient/p1/Patient/p2"}}
        body = care_plan(contained=[team], careTeam=[{"reference": "#t"}])

        response = await client.post("/fhir/CarePlan", json=body, headers=FHIR_JSON)

        refused(response, "CarePlan.contained[0].subject")

    @pytest.mark.parametrize("reference", ["#p/1", "#a b"])
    async def test_malformed_contained_reference_is_422(
        self, client: httpx.AsyncClient, p1_and_p2: None, reference: str
    ) -> None:
        body = care_plan(subject=reference, contained=[{"resourceType": "Patient", "id": "p"}])

        response = await client.post("/fhir/CarePlan", json=body, headers=FHIR_JSON)

        refused(response, "CarePlan.subject")

    async def test_patch_is_422_and_changes_nothing(
        self, client: httpx.AsyncClient, engine: AsyncEngine, plan_of_p1: str
    ) -> None:
        patch = [{"op": "replace", "path": "/subject/reference", "value": "Patient/p1/Patient/p2"}]

        response = await client.patch(f"/fhir/CarePlan/{plan_of_p1}", json=patch, headers=JSON_PATCH)

        refused(response, "CarePlan.subject")
        assert await versions_of(engine, "CarePlan") == 1

    async def test_conditional_update_is_422(
        self, client: httpx.AsyncClient, engine: AsyncEngine, p1_and_p2: None
    ) -> None:
        body = care_plan(subject="Patient/p1/Patient/p2", identifier=[{"system": "urn:x", "value": "1"}])

        response = await client.put(
            "/fhir/CarePlan", params={"identifier": "urn:x|1"}, json=body, headers=FHIR_JSON
        )

        refused(response, "CarePlan.subject")
        assert await versions_of(engine, "CarePlan") == 0

    @pytest.mark.parametrize("method", ["POST", "PUT"])
    async def test_transaction_entry_is_422_naming_it_and_nothing_is_stored(
        self, client: httpx.AsyncClient, engine: AsyncEngine, p1_and_p2: None, method: str
    ) -> None:
        good = {
            "fullUrl": "urn:uuid:0b9a5d1e-7d3c-4f7e-9a51-3c2f0e6d8b11",
            "resource": care_plan(),
            "request": {"method": "POST", "url": "CarePlan"},
        }
        bad_plan = care_plan(subject="Patient/p1/Patient/p2")
        if method == "PUT":
            bad_plan["id"] = "plan2"
        bad = {
            "resource": bad_plan,
            "request": {"method": method, "url": "CarePlan/plan2" if method == "PUT" else "CarePlan"},
        }
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [good, bad]}

        response = await client.post("/fhir", json=bundle, headers=FHIR_JSON)

        assert response.status_code == 422, response.text
        assert response.json()["issue"][0]["expression"] == ["Bundle.entry[1].resource.subject"]
        assert await versions_of(engine, "CarePlan") == 0

    async def test_transaction_patch_entry_is_422(
        self, client: httpx.AsyncClient, engine: AsyncEngine, plan_of_p1: str
    ) -> None:
        patch = [{"op": "replace", "path": "/subject/reference", "value": "Patient/p1/Patient/p2"}]
        binary = {
            "resourceType": "Binary",
            "contentType": "application/json-patch+json",
            "data": base64.b64encode(orjson.dumps(patch)).decode(),
        }
        entry = {"resource": binary, "request": {"method": "PATCH", "url": f"CarePlan/{plan_of_p1}"}}
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [entry]}

        response = await client.post("/fhir", json=bundle, headers=FHIR_JSON)

        assert response.status_code == 422, response.text
        assert response.json()["issue"][0]["expression"] == ["Bundle.entry[0].resource.subject"]
        assert await versions_of(engine, "CarePlan") == 1

    async def test_batch_entry_is_422_and_the_others_are_written(
        self, client: httpx.AsyncClient, engine: AsyncEngine, p1_and_p2: None
    ) -> None:
        entries = [
            {"resource": care_plan(subject=subject), "request": {"method": "POST", "url": "CarePlan"}}
            for subject in ("Patient/p1/Patient/p2", "Patient/p1")
        ]
        bundle = {"resourceType": "Bundle", "type": "batch", "entry": entries}

        response = await client.post("/fhir", json=bundle, headers=FHIR_JSON)

        assert response.status_code == 200, response.text
        first, second = response.json()["entry"]
        assert first["response"]["status"].startswith("422")
        assert first["response"]["outcome"]["issue"][0]["expression"] == ["Bundle.entry[0].resource.subject"]
        assert second["response"]["status"].startswith("201")
        assert await versions_of(engine, "CarePlan") == 1

    async def test_a_patient_token_cannot_write_into_another_compartment_through_one(
        self, anonymous_client: httpx.AsyncClient, engine: AsyncEngine, token: Any, p1_and_p2: None
    ) -> None:
        headers = {"Authorization": f"Bearer {token('patient/*.cruds', patient='p1')}", **FHIR_JSON}

        response = await anonymous_client.post(
            "/fhir/CarePlan", json=care_plan(subject="Patient/p1/Patient/p2"), headers=headers
        )

        assert response.status_code in (403, 422), response.text
        assert response.json()["issue"][0]["expression"] == ["CarePlan.subject"]
        assert await versions_of(engine, "CarePlan") == 0

    async def test_validate_reports_it(self, client: httpx.AsyncClient, p1_and_p2: None) -> None:
        parameters = {
            "resourceType": "Parameters",
            "parameter": [{"name": "resource", "resource": care_plan(subject="Patient/p1/Patient/p2")}],
        }

        response = await client.post("/fhir/CarePlan/$validate", json=parameters, headers=FHIR_JSON)

        expressions = [issue.get("expression") for issue in response.json()["issue"]]
        assert ["CarePlan.subject"] in expressions, response.text
