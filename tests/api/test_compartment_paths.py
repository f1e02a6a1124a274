"""A patient-context token stays in its patient's compartment on every path, not only plain REST.

Transactions, batches, conditional writes, PATCH, the SDC operations and the IPT API all reach resources;
through each of them, patient p2's data must read as absent to patient p1's token, and nothing of p2 may
change. Spec: https://hl7.org/fhir/R4/compartmentdefinition-patient.html,
https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html
"""

import json
from collections.abc import Callable
from importlib import resources
from typing import Any

import httpx
import pytest

from tests.factories import (
    FHIR_JSON,
    care_plan,
    closeness_code_system,
    closeness_value_set,
    patient,
    worksheet,
    worksheet_response,
)

Token = Callable[..., str]
QR = "/fhir/QuestionnaireResponse"
GOAL_SYSTEM = "urn:example:goals"


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **FHIR_JSON}


def _goal(subject: str, *, code: str = "g-1", text: str = "sleep better") -> dict[str, Any]:
    return {
        "resourceType": "Goal",
        "identifier": [{"system": GOAL_SYSTEM, "value": code}],
        "lifecycleStatus": "active",
        "description": {"text": text},
        "subject": {"reference": subject},
    }


class World:
    """p1 (whose token the tests use) and p2, with p2's Goal and completed worksheet response."""

    def __init__(self, client: httpx.AsyncClient, admin: dict[str, str], mine: dict[str, str]) -> None:
        self.client, self.admin, self.mine = client, admin, mine
        self.goal_p2 = ""
        self.response_p2 = ""

    async def snapshot(self) -> tuple[Any, Any]:
        goal = (await self.client.get(f"/fhir/Goal/{self.goal_p2}", headers=self.admin)).json()
        response = (await self.client.get(f"{QR}/{self.response_p2}", headers=self.admin)).json()
        return goal["meta"]["versionId"], response["meta"]["versionId"]


@pytest.fixture
async def world(anonymous_client: httpx.AsyncClient, token: Token) -> World:
    admin = _auth(token())
    state = World(anonymous_client, admin, _auth(token("patient/*.cruds", patient="p1")))
    for resource in (
        patient(id="p1"),
        patient(id="p2", family="Other"),
        closeness_code_system(),
        closeness_value_set(),
        worksheet(),
    ):
        url = f"/fhir/{resource['resourceType']}/{resource['id']}"
        assert (await anonymous_client.put(url, json=resource, headers=admin)).status_code == 201
    goal = await anonymous_client.post("/fhir/Goal", json=_goal("Patient/p2"), headers=admin)
    state.goal_p2 = goal.json()["id"]
    response = await anonymous_client.post(QR, json=worksheet_response(subject="Patient/p2"), headers=admin)
    assert response.status_code == 201, response.text
    state.response_p2 = response.json()["id"]
    return state


async def test_patch_of_another_patients_resource_is_404(world: World) -> None:
    before = await world.snapshot()
    patch = [{"op": "replace", "path": "/description/text", "value": "mine now"}]
    response = await world.client.patch(
        f"/fhir/Goal/{world.goal_p2}",
        json=patch,
        headers={**world.mine, "Content-Type": "application/json-patch+json"},
    )
    assert response.status_code == 404
    assert await world.snapshot() == before


class TestBundles:
    async def test_a_transaction_touching_another_patient_writes_nothing(self, world: World) -> None:
        before = await world.snapshot()
        own_goal = {
            "fullUrl": "urn:uuid:0c8a3a1e-1d7e-4b8e-9b7a-1a2b3c4d5e6f",
            "resource": _goal("Patient/p1"),
            "request": {"method": "POST", "url": "Goal"},
        }
        for entry, status in (
            (
                {
                    "resource": {**_goal("Patient/p1"), "id": world.goal_p2},
                    "request": {"method": "PUT", "url": f"Goal/{world.goal_p2}"},
                },
                404,
            ),
            ({"request": {"method": "DELETE", "url": f"Goal/{world.goal_p2}"}}, 404),
            ({"resource": _goal("Patient/p2"), "request": {"method": "POST", "url": "Goal"}}, 403),
        ):
            bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [own_goal, entry]}
            response = await world.client.post("/fhir", json=bundle, headers=world.mine)
            assert response.status_code == status, response.text
            assert response.json()["issue"][0]["expression"][0].startswith("Bundle.entry[1]")
        assert await world.snapshot() == before
        goals = await world.client.get("/fhir/Goal", params={"subject": "Patient/p1"}, headers=world.admin)
        assert goals.json()["total"] == 0

    async def test_a_batch_reads_another_patients_resource_as_absent(self, world: World) -> None:
        bundle = {
            "resourceType": "Bundle",
            "type": "batch",
            "entry": [
                {"request": {"method": "GET", "url": f"Goal/{world.goal_p2}"}},
                {"request": {"method": "GET", "url": "Patient/p1"}},
            ],
        }
        response = await world.client.post("/fhir", json=bundle, headers=world.mine)
        assert response.status_code == 200
        statuses = [e["response"]["status"] for e in response.json()["entry"]]
        assert statuses[0].startswith("404")
        assert statuses[1].startswith("200")


class TestConditionalWrites:
    async def test_conditional_create_does_not_match_another_patients_resource(self, world: World) -> None:
        headers = {**world.mine, "If-None-Exist": f"identifier={GOAL_SYSTEM}|g-1"}
        response = await world.client.post("/fhir/Goal", json=_goal("Patient/p1"), headers=headers)
        assert response.status_code == 201
        assert response.json()["id"] != world.goal_p2
        assert response.json()["subject"] == {"reference": "Patient/p1"}

    async def test_conditional_update_and_delete_leave_another_patients_resource_alone(
        self, world: World
    ) -> None:
        before = await world.snapshot()
        url = f"/fhir/Goal?identifier={GOAL_SYSTEM}|g-1"
        updated = await world.client.put(url, json=_goal("Patient/p1", text="mine"), headers=world.mine)
        assert updated.status_code == 201
        assert updated.json()["id"] != world.goal_p2
        deleted = await world.client.delete(
            f"/fhir/Goal?identifier={GOAL_SYSTEM}|g-1&subject=Patient/p2", headers=world.mine
        )
        # p2's goal is not a match for p1's token, so the criteria match nothing.
        assert deleted.status_code == 404
        assert await world.snapshot() == before


class TestReferences:
    async def test_a_reference_into_another_compartment_is_not_found(self, world: World) -> None:
        plan = care_plan(subject="Patient/p1", goal=[{"reference": f"Goal/{world.goal_p2}"}])
        response = await world.client.post("/fhir/CarePlan", json=plan, headers=world.mine)
        assert response.status_code == 422
        assert response.json()["issue"][0]["expression"] == ["CarePlan.goal[0]"]

    async def test_a_refused_delete_does_not_name_another_patients_resource(self, world: World) -> None:
        own = await world.client.post("/fhir/Goal", json=_goal("Patient/p1", code="g-2"), headers=world.mine)
        goal_id = own.json()["id"]
        # Unusual but possible: the system files p2's plan against p1's goal.
        plan = care_plan(subject="Patient/p2", goal=[{"reference": f"Goal/{goal_id}"}])
        plan_id = (await world.client.post("/fhir/CarePlan", json=plan, headers=world.admin)).json()["id"]
        refused = await world.client.delete(f"/fhir/Goal/{goal_id}", headers=world.mine)
        assert refused.status_code == 409
        diagnostics = refused.json()["issue"][0]["diagnostics"]
        assert plan_id not in diagnostics
        assert "a resource this token may not read" in diagnostics
        named = await world.client.delete(f"/fhir/Goal/{goal_id}", headers=world.admin)
        assert plan_id in named.json()["issue"][0]["diagnostics"]


class TestOperations:
    async def test_extract_and_validate_of_another_patients_response_are_404(self, world: World) -> None:
        extract = await world.client.get(f"{QR}/{world.response_p2}/$extract", headers=world.mine)
        assert extract.status_code == 404
        validate = await world.client.post(
            f"{QR}/{world.response_p2}/$validate",
            json={"resourceType": "Parameters", "parameter": [{"name": "mode", "valueCode": "delete"}]},
            headers=world.mine,
        )
        assert validate.status_code == 404

    async def test_populate_for_another_patient_is_refused_and_never_prefills_from_them(
        self, world: World
    ) -> None:
        def body(subject: str) -> dict[str, Any]:
            return {
                "resourceType": "Parameters",
                "parameter": [{"name": "subject", "valueReference": {"reference": subject}}],
            }

        theirs = await world.client.post(
            "/fhir/Questionnaire/mood-check-1/$populate", json=body("Patient/p2"), headers=world.mine
        )
        assert 400 <= theirs.status_code < 500
        assert "p2" not in json.dumps(theirs.json()).replace("Patient/p2", "")
        mine = await world.client.post(
            "/fhir/Questionnaire/mood-check-1/$populate", json=body("Patient/p1"), headers=world.mine
        )
        assert mine.status_code == 200, mine.text
        assert world.response_p2 not in mine.text


class TestTreatmentPlans:
    async def test_another_patients_plan_is_neither_listed_nor_read(
        self, anonymous_client: httpx.AsyncClient, token: Token
    ) -> None:
        document = json.loads(
            resources.files("mappings").joinpath("samples/sample_plan.json").read_text(encoding="utf-8")
        )
        posted = await anonymous_client.post("/ipt/treatment-plans", json=document, headers=_auth(token()))
        assert posted.status_code == 201, posted.text
        plan_id, client_id = posted.json()["id"], posted.json()["client"]["id"]
        outsider = _auth(token("patient/*.rs", patient="someone-else"))
        assert (
            await anonymous_client.get(f"/ipt/treatment-plans/{plan_id}", headers=outsider)
        ).status_code == 404
        listed = await anonymous_client.get(
            "/ipt/treatment-plans", params={"patient": client_id}, headers=outsider
        )
        assert listed.status_code == 200
        assert plan_id not in listed.text
        owner = _auth(token("patient/*.rs", patient=client_id))
        assert (
            await anonymous_client.get(f"/ipt/treatment-plans/{plan_id}", headers=owner)
        ).status_code == 200
        own_list = await anonymous_client.get(
            "/ipt/treatment-plans", params={"patient": client_id}, headers=owner
        )
        assert plan_id in own_list.text


class TestPortalSubmission:
    async def test_a_patient_submits_a_worksheet_response_for_itself_only(
        self, world: World, token: Token
    ) -> None:
        portal = _auth(token("patient/QuestionnaireResponse.cru patient/Questionnaire.rs", patient="p1"))
        own = await world.client.post(QR, json=worksheet_response(subject="Patient/p1"), headers=portal)
        assert own.status_code == 201, own.text
        assert own.json()["subject"] == {"reference": "Patient/p1"}
        versions = (await world.client.get(f"{QR}", params={"_summary": "count"}, headers=world.admin)).json()
        other = await world.client.post(QR, json=worksheet_response(subject="Patient/p2"), headers=portal)
        assert other.status_code == 403
        assert other.json()["issue"][0]["expression"] == ["QuestionnaireResponse.subject"]
        authored_as_p1 = worksheet_response(subject="Patient/p2", author={"reference": "Patient/p1"})
        assert (await world.client.post(QR, json=authored_as_p1, headers=portal)).status_code == 403
        after = (await world.client.get(f"{QR}", params={"_summary": "count"}, headers=world.admin)).json()
        assert after["total"] == versions["total"]
        # The response's own amendments stay possible; taking over p2's is not.
        amended = {**own.json(), "status": "amended"}
        assert (
            await world.client.put(f"{QR}/{own.json()['id']}", json=amended, headers=portal)
        ).status_code == 200
        stolen = {**worksheet_response(subject="Patient/p1"), "id": world.response_p2}
        assert (
            await world.client.put(f"{QR}/{world.response_p2}", json=stolen, headers=portal)
        ).status_code == 404
