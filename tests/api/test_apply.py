"""`PlanDefinition/$apply` over HTTP on PostgreSQL, and the draft's way into a treatment-plan document.

Spec: https://hl7.org/fhir/R4/plandefinition-operation-apply.html (instance and type level, GET and POST,
inputs as Parameters or query string, the CarePlan returned and not stored);
https://hl7.org/fhir/R4/operations.html#request.
"""

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from service.interactions.content import load_ipt_content
from tests.conftest import stored_audit_events
from tests.factories import condition

FHIR_JSON = {"Content-Type": "application/fhir+json"}
PLAN_DEFINITION = "http://example.org/fhir/ipt/PlanDefinition/ipt-depression"
PLAN_DEFINITION_ID = "ipt-depression-1.0.0"
TECHNIQUES = "http://example.org/fhir/ipt/CodeSystem/ipt-technique"


async def _create(client: httpx.AsyncClient, resource: dict[str, Any]) -> str:
    response = await client.post(f"/fhir/{resource['resourceType']}", json=resource, headers=FHIR_JSON)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


@pytest.fixture
async def people(client: httpx.AsyncClient, engine: AsyncEngine) -> dict[str, str]:
    await load_ipt_content(engine)
    patient = await _create(
        client,
        {
            "resourceType": "Patient",
            "identifier": [{"system": "urn:example:mrn", "value": "42"}],
            "name": [{"text": "Alex Kim"}],
        },
    )
    practitioner = await _create(
        client,
        {
            "resourceType": "Practitioner",
            "identifier": [{"system": "urn:example:staff", "value": "T-1"}],
            "name": [{"text": "Dr. Rivera"}],
        },
    )
    condition_id = await _create(
        client,
        condition(
            subject=f"Patient/{patient}",
            code={"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "F32.1"}]},
        ),
    )
    return {"patient": patient, "practitioner": practitioner, "condition": condition_id}


def _parameters(**values: Any) -> dict[str, Any]:
    parameters = []
    for name, value in values.items():
        for item in value if isinstance(value, list) else [value]:
            parameters.append({"name": name, "valueString": item})
    return {"resourceType": "Parameters", "parameter": parameters}


def _techniques(careplan: dict[str, Any]) -> set[str]:
    return {
        c["code"]
        for activity in careplan["activity"]
        for c in activity["detail"].get("code", {}).get("coding", [])
        if c["system"] == TECHNIQUES
    }


def _worksheets(careplan: dict[str, Any]) -> set[str]:
    return {
        canonical.rsplit("/", 1)[1]
        for activity in careplan["activity"]
        for canonical in activity["detail"].get("instantiatesCanonical", [])
    }


async def _count(engine: AsyncEngine, resource_type: str) -> int:
    async with engine.connect() as connection:
        statement = text("SELECT count(*) FROM resources WHERE resource_type = :t")
        return int((await connection.execute(statement, {"t": resource_type})).scalar_one())


class TestApply:
    @pytest.mark.parametrize(
        ("focus", "present", "absent"),
        [
            ("grief", {"grief-analysis"}, {"role-exploration", "social-skills-training"}),
            ("role-dispute", {"communication-analysis", "role-play"}, {"grief-analysis", "role-exploration"}),
            ("role-transition", {"role-exploration", "decision-analysis"}, {"grief-analysis", "role-play"}),
            (
                "interpersonal-deficits",
                {"social-skills-training", "attachment-exploration"},
                {"grief-analysis", "role-exploration"},
            ),
        ],
    )
    async def test_each_focus_gets_its_own_techniques(
        self,
        client: httpx.AsyncClient,
        engine: AsyncEngine,
        people: dict[str, str],
        focus: str,
        present: set[str],
        absent: set[str],
    ) -> None:
        body = _parameters(
            subject=f"Patient/{people['patient']}", practitioner=f"Practitioner/{people['practitioner']}"
        )
        body["parameter"].append({"name": "focus", "valueCode": focus})
        response = await client.post(
            f"/fhir/PlanDefinition/{PLAN_DEFINITION_ID}/$apply", json=body, headers=FHIR_JSON
        )
        assert response.status_code == 200, response.text
        careplan = response.json()
        assert careplan["resourceType"] == "CarePlan"
        assert careplan["status"] == "draft"
        assert careplan["intent"] == "proposal"
        assert careplan["instantiatesCanonical"] == [f"{PLAN_DEFINITION}|1.0.0"]
        assert careplan["subject"] == {"reference": f"Patient/{people['patient']}"}
        assert present <= _techniques(careplan)
        assert not absent & _techniques(careplan)
        assert "id" not in careplan
        # Returned, not stored.
        assert await _count(engine, "CarePlan") == 0

    async def test_its_audit_event_names_the_subject_it_planned_for(
        self,
        client: httpx.AsyncClient,
        people: dict[str, str],
        engine: AsyncEngine,
        flush_audit: Callable[[], Awaitable[bool]],
    ) -> None:
        subject = f"Patient/{people['patient']}"
        url = f"/fhir/PlanDefinition/{PLAN_DEFINITION_ID}/$apply"
        assert (await client.get(url, params={"subject": subject, "focus": "grief"})).status_code == 200
        assert await flush_audit()
        [event] = [
            e
            for e in await stored_audit_events(engine)
            if e["subtype"][0]["code"] == "operation"  # type: ignore[index]
        ]
        named = [entity["what"]["reference"] for entity in event["entity"] if "what" in entity]  # type: ignore[union-attr]
        assert named == [f"PlanDefinition/{PLAN_DEFINITION_ID}", subject]

    async def test_grief_gets_the_grief_worksheets_and_role_dispute_does_not(
        self, client: httpx.AsyncClient, people: dict[str, str]
    ) -> None:
        subject = f"Patient/{people['patient']}"
        url = f"/fhir/PlanDefinition/{PLAN_DEFINITION_ID}/$apply"
        grief = (await client.get(url, params={"subject": subject, "focus": "grief"})).json()
        dispute = (await client.get(url, params={"subject": subject, "focus": "role-dispute"})).json()
        assert {"grief-and-loss-review", "goodbye-letter"} <= _worksheets(grief)
        assert not {"grief-and-loss-review", "goodbye-letter"} & _worksheets(dispute)
        assert "communication-analysis" in _worksheets(dispute)
        assert {"phq-9", "relapse-prevention-plan"} <= _worksheets(grief) & _worksheets(dispute)

    async def test_phases_carry_their_sessions(
        self, client: httpx.AsyncClient, people: dict[str, str]
    ) -> None:
        careplan = (
            await client.get(
                f"/fhir/PlanDefinition/{PLAN_DEFINITION_ID}/$apply",
                params={"subject": f"Patient/{people['patient']}", "focus": "grief"},
            )
        ).json()
        level = "http://example.org/fhir/ipt/StructureDefinition/ipt-activity-level"
        levels = [
            next(e["valueCode"] for e in a["extension"] if e["url"] == level) for a in careplan["activity"]
        ]
        assert levels[0] == "course"
        assert levels.count("phase") == 3
        course = careplan["activity"][0]["detail"]["scheduledTiming"]["repeat"]
        assert (course["count"], course["countMax"], course["duration"]) == (12, 16, 50)
        phases = [a for a, lvl in zip(careplan["activity"], levels, strict=True) if lvl == "phase"]
        counts = [p["detail"]["scheduledTiming"]["repeat"]["count"] for p in phases]
        assert counts == [4, 6, 6]

    async def test_type_level_with_canonical_and_query_string(
        self, client: httpx.AsyncClient, people: dict[str, str]
    ) -> None:
        params = {
            "planDefinition": f"{PLAN_DEFINITION}|1.0.0",
            "subject": f"Patient/{people['patient']}",
            "focus": "role-transition",
        }
        by_get = await client.get("/fhir/PlanDefinition/$apply", params=params)
        assert by_get.status_code == 200, by_get.text
        by_post = await client.post(
            "/fhir/PlanDefinition/$apply",
            json={
                "resourceType": "Parameters",
                "parameter": [
                    {"name": "planDefinition", "valueCanonical": PLAN_DEFINITION},
                    {"name": "subject", "valueReference": {"reference": f"Patient/{people['patient']}"}},
                    {
                        "name": "focus",
                        "valueCoding": {
                            "system": "http://example.org/fhir/ipt/CodeSystem/ipt-problem-area",
                            "code": "role-transition",
                        },
                    },
                ],
            },
            headers=FHIR_JSON,
        )
        assert by_post.status_code == 200, by_post.text
        assert _techniques(by_get.json()) == _techniques(by_post.json())
        assert "role-exploration" in _techniques(by_get.json())

    async def test_without_focus_only_unconditional_actions(
        self, client: httpx.AsyncClient, people: dict[str, str]
    ) -> None:
        response = await client.get(
            f"/fhir/PlanDefinition/{PLAN_DEFINITION_ID}/$apply",
            params={"subject": f"Patient/{people['patient']}"},
        )
        assert response.status_code == 200
        techniques = _techniques(response.json())
        assert "interpersonal-inventory" in techniques
        assert "grief-analysis" not in techniques
        assert "role-play" not in techniques


class TestApplyErrors:
    async def _error(self, response: httpx.Response, status: int, expression: str) -> None:
        assert response.status_code == status, response.text
        outcome = response.json()
        assert outcome["resourceType"] == "OperationOutcome"
        assert outcome["issue"][0]["expression"][0].startswith(expression)

    async def test_unknown_patient(self, client: httpx.AsyncClient, people: dict[str, str]) -> None:
        response = await client.post(
            f"/fhir/PlanDefinition/{PLAN_DEFINITION_ID}/$apply",
            json=_parameters(subject="Patient/nobody", focus="grief"),
            headers=FHIR_JSON,
        )
        await self._error(response, 422, "Parameters.parameter[0]")

    async def test_unknown_plan_definition(self, client: httpx.AsyncClient, people: dict[str, str]) -> None:
        subject = f"Patient/{people['patient']}"
        response = await client.get("/fhir/PlanDefinition/nope/$apply", params={"subject": subject})
        await self._error(response, 404, "PlanDefinition")
        response = await client.get(
            "/fhir/PlanDefinition/$apply", params={"subject": subject, "planDefinition": "http://x.org/pd|9"}
        )
        await self._error(response, 404, "planDefinition")

    async def test_bad_focus(self, client: httpx.AsyncClient, people: dict[str, str]) -> None:
        response = await client.get(
            f"/fhir/PlanDefinition/{PLAN_DEFINITION_ID}/$apply",
            params={"subject": f"Patient/{people['patient']}", "focus": "sadness"},
        )
        await self._error(response, 400, "focus")

    async def test_missing_subject(self, client: httpx.AsyncClient, people: dict[str, str]) -> None:
        response = await client.post(
            f"/fhir/PlanDefinition/{PLAN_DEFINITION_ID}/$apply",
            json=_parameters(focus="grief"),
            headers=FHIR_JSON,
        )
        await self._error(response, 400, "subject")

    async def test_unknown_parameter(self, client: httpx.AsyncClient, people: dict[str, str]) -> None:
        response = await client.post(
            f"/fhir/PlanDefinition/{PLAN_DEFINITION_ID}/$apply",
            json=_parameters(subject=f"Patient/{people['patient']}", colour="blue"),
            headers=FHIR_JSON,
        )
        await self._error(response, 400, "Parameters.parameter[1]")

    async def test_condition_of_another_patient(
        self, client: httpx.AsyncClient, people: dict[str, str]
    ) -> None:
        other = await _create(client, {"resourceType": "Patient"})
        response = await client.post(
            f"/fhir/PlanDefinition/{PLAN_DEFINITION_ID}/$apply",
            json=_parameters(subject=f"Patient/{other}", condition=f"Condition/{people['condition']}"),
            headers=FHIR_JSON,
        )
        await self._error(response, 422, "Parameters.parameter[1]")

    async def test_subject_that_is_not_a_patient(
        self, client: httpx.AsyncClient, people: dict[str, str]
    ) -> None:
        response = await client.get(
            f"/fhir/PlanDefinition/{PLAN_DEFINITION_ID}/$apply", params={"subject": "Group/1"}
        )
        await self._error(response, 400, "subject")


class TestDraftToDocument:
    async def test_draft_becomes_a_document_that_can_be_revised_and_posted(
        self, client: httpx.AsyncClient, people: dict[str, str]
    ) -> None:
        body = _parameters(
            subject=f"Patient/{people['patient']}",
            practitioner=f"Practitioner/{people['practitioner']}",
            focus="grief",
            condition=f"Condition/{people['condition']}",
        )
        draft = (
            await client.post(
                f"/fhir/PlanDefinition/{PLAN_DEFINITION_ID}/$apply", json=body, headers=FHIR_JSON
            )
        ).json()
        converted = await client.post("/ipt/treatment-plans/$from-careplan", json=draft, headers=FHIR_JSON)
        assert converted.status_code == 200, converted.text
        document = converted.json()
        assert "id" not in document
        assert document["status"] == "draft"
        assert document["intent"] == "proposal"
        assert document["primary_focus"] == "grief"
        assert document["client"]["id"] == people["patient"]
        assert document["therapist"]["id"] == people["practitioner"]
        assert document["diagnoses"][0]["id"] == people["condition"]
        assert "id" not in document["care_team"]
        assert [p["code"] for p in document["phases"]] == ["initial", "intermediate", "termination"]
        assert len(document["goals"]) == 3
        assert all("id" not in g for g in document["goals"])
        techniques = {
            t
            for p in document["phases"]
            for b in p["blocks"]
            for a in b["activities"]
            for t in a["techniques"]
        }
        assert "grief-analysis" in techniques

        # The therapist revises the draft and stores it as the agreed plan.
        document["status"] = "active"
        document["intent"] = "plan"
        document["presenting_problem"] = "Low mood since the death of his mother."
        stored = await client.post("/ipt/treatment-plans", json=document)
        assert stored.status_code == 201, stored.text
        plan = stored.json()
        assert plan["client"]["id"] == people["patient"]
        assert plan["therapist"]["id"] == people["practitioner"]
        assert plan["phases"] == document["phases"]
        # A POST never writes over stored resources: the plan's diagnosis is its own copy of the Condition.
        assert plan["diagnoses"][0]["code"] == document["diagnoses"][0]["code"]
        assert plan["diagnoses"][0]["id"] != people["condition"]
        condition = (await client.get(f"/fhir/Condition/{people['condition']}")).json()
        assert condition["meta"]["versionId"] == "1"

    async def test_draft_without_practitioner_has_no_therapist(
        self, client: httpx.AsyncClient, people: dict[str, str]
    ) -> None:
        draft = (
            await client.get(
                f"/fhir/PlanDefinition/{PLAN_DEFINITION_ID}/$apply",
                params={
                    "subject": f"Patient/{people['patient']}",
                    "condition": f"Condition/{people['condition']}",
                },
            )
        ).json()
        response = await client.post("/ipt/treatment-plans/$from-careplan", json=draft, headers=FHIR_JSON)
        assert response.status_code == 422
        assert response.json()["issue"][0]["expression"] == ["CarePlan.author"]

    async def test_not_a_careplan_is_400(self, client: httpx.AsyncClient) -> None:
        response = await client.post(
            "/ipt/treatment-plans/$from-careplan", json={"resourceType": "Patient"}, headers=FHIR_JSON
        )
        assert response.status_code == 400


class TestCapabilityStatement:
    async def test_apply_is_declared_on_plan_definition(self, client: httpx.AsyncClient) -> None:
        statement = (await client.get("/fhir/metadata")).json()
        resource = next(r for r in statement["rest"][0]["resource"] if r["type"] == "PlanDefinition")
        operations = {o["name"]: o["definition"] for o in resource.get("operation", [])}
        assert operations["apply"] == "http://hl7.org/fhir/OperationDefinition/PlanDefinition-apply"
