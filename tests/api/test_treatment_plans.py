"""The IPT treatment-plan API over HTTP on PostgreSQL.

Spec: DESIGN.md "Two faces" (a plan written through /ipt is an ordinary CarePlan through /fhir, and a CarePlan
of the mapping's shape written through /fhir reads back through /ipt); https://hl7.org/fhir/R4/http.html#transaction
(a plan is stored all or nothing); https://hl7.org/fhir/R4/http.html#concurrency (If-Match, 412).
"""

import copy
import json
from importlib import resources
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from mappings.careplan import to_fhir_transaction
from mappings.domain import TreatmentPlan
from service.storage.repository import ResourceRepository
from service.storage.tables import resources as resource_rows

FHIR_JSON = {"Content-Type": "application/fhir+json"}


def sample() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(
        resources.files("mappings").joinpath("samples/sample_plan.json").read_text(encoding="utf-8")
    )
    return loaded


def canonical(document: dict[str, Any]) -> dict[str, Any]:
    """The document as the server writes it (defaults filled in, nulls left out), without FHIR ids."""
    plan = TreatmentPlan.model_validate(document)
    data: dict[str, Any] = _strip_ids(json.loads(plan.model_dump_json(exclude_none=True)))
    return data


def _strip_ids(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_ids(v) for k, v in value.items() if k != "id"}
    if isinstance(value, list):
        return [_strip_ids(v) for v in value]
    return value


async def _rows(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return int(
            (
                await connection.execute(
                    text("SELECT count(*) FROM resource_versions WHERE resource_type <> 'AuditEvent'")
                )
            ).scalar_one()
        )


async def _post(client: httpx.AsyncClient, document: dict[str, Any]) -> httpx.Response:
    response = await client.post("/ipt/treatment-plans", json=document)
    assert response.status_code == 201, response.text
    return response


async def _version(client: httpx.AsyncClient, reference: str) -> str:
    response = await client.get(f"/fhir/{reference}")
    assert response.status_code == 200, response.text
    return str(response.json()["meta"]["versionId"])


class TestCreate:
    async def test_sample_plan_is_stored_and_reads_back_equal(self, client: httpx.AsyncClient) -> None:
        response = await _post(client, sample())
        posted = response.json()
        plan_id = posted["id"]
        assert response.headers["location"] == f"http://testserver/ipt/treatment-plans/{plan_id}"
        assert response.headers["etag"].startswith('W/"')
        assert response.headers["content-type"].startswith("application/json")
        # Every resource of the plan got its FHIR id.
        assert posted["client"]["id"]
        assert posted["therapist"]["id"]
        assert posted["care_team"]["id"]
        assert all(d["id"] for d in posted["diagnoses"])
        assert all(g["id"] and all(o["id"] for o in g["objectives"]) for g in posted["goals"])

        read = await client.get(f"/ipt/treatment-plans/{plan_id}")
        assert read.status_code == 200
        assert read.json() == posted
        assert read.headers["etag"] == response.headers["etag"]
        assert canonical(read.json()) == canonical(sample())

    async def test_ids_in_a_posted_document_are_ignored(self, client: httpx.AsyncClient) -> None:
        first = (await _post(client, sample())).json()
        second = (await _post(client, first)).json()
        assert second["id"] != first["id"]
        assert {g["id"] for g in second["goals"]}.isdisjoint({g["id"] for g in first["goals"]})
        assert (await client.get(f"/fhir/CarePlan/{first['id']}")).json()["meta"]["versionId"] == "1"

    async def test_the_same_therapist_twice_is_one_practitioner(self, client: httpx.AsyncClient) -> None:
        other = sample()
        other["client"]["identifiers"] = [
            {"system": "http://clinic.example.org/fhir/sid/mrn", "value": "MRN-1"}
        ]
        first = (await _post(client, sample())).json()
        second = (await _post(client, other)).json()
        assert first["therapist"]["id"] == second["therapist"]["id"]
        assert first["client"]["id"] != second["client"]["id"]
        found = (
            await client.get(
                "/fhir/Practitioner", params={"identifier": "http://clinic.example.org/fhir/sid/staff|T-0113"}
            )
        ).json()
        assert found["total"] == 1

    @pytest.mark.parametrize(
        ("change", "field"),
        [
            (lambda d: d.pop("diagnoses"), "diagnoses"),
            (
                lambda d: d["goals"][1]["objectives"][0].update(description="  "),
                "goals[1].objectives[0].description",
            ),
            (
                lambda d: d["goals"][1]["targets"][0].update(detail_integer="many"),
                "goals[1].targets[0].detail_integer",
            ),
            (lambda d: d["phases"][1]["sessions"].update(first=3), "phases[1].sessions.first"),
            (lambda d: d.update(primary_focus="sadness"), "primary_focus"),
            (lambda d: d["client"].update(identifiers=[]), "client.identifiers"),
            (lambda d: d.update(unexpected=1), "unexpected"),
        ],
    )
    async def test_invalid_document_is_422_naming_the_field_and_stores_nothing(
        self, client: httpx.AsyncClient, engine: AsyncEngine, change: Any, field: str
    ) -> None:
        document = sample()
        change(document)
        before = await _rows(engine)
        response = await client.post("/ipt/treatment-plans", json=document)
        assert response.status_code == 422, response.text
        outcome = response.json()
        assert outcome["resourceType"] == "OperationOutcome"
        assert field in [e for issue in outcome["issue"] for e in issue.get("expression", [])]
        assert await _rows(engine) == before

    async def test_body_that_is_not_json_is_400(self, client: httpx.AsyncClient, engine: AsyncEngine) -> None:
        response = await client.post(
            "/ipt/treatment-plans", content=b"{not json", headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 400
        assert response.json()["issue"][0]["expression"] == ["TreatmentPlan"]
        assert await _rows(engine) == 0


class TestRead:
    async def test_unknown_plan_is_404(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/ipt/treatment-plans/nope")
        assert response.status_code == 404
        assert response.json()["issue"][0]["expression"] == ["id"]

    async def test_careplan_not_of_the_mapping_is_422_naming_what_cannot_be_read(
        self, client: httpx.AsyncClient
    ) -> None:
        patient = (
            await client.post("/fhir/Patient", json={"resourceType": "Patient"}, headers=FHIR_JSON)
        ).json()
        careplan = {
            "resourceType": "CarePlan",
            "status": "active",
            "intent": "plan",
            "subject": {"reference": f"Patient/{patient['id']}"},
        }
        created = (await client.post("/fhir/CarePlan", json=careplan, headers=FHIR_JSON)).json()
        response = await client.get(f"/ipt/treatment-plans/{created['id']}")
        assert response.status_code == 422
        issue = response.json()["issue"][0]
        assert issue["expression"][0].startswith(("Patient", "CarePlan"))
        assert "cannot be read as an IPT treatment plan" in issue["diagnostics"]

    async def test_a_deleted_careplan_is_410(self, client: httpx.AsyncClient) -> None:
        plan = (await _post(client, sample())).json()
        assert (await client.delete(f"/fhir/CarePlan/{plan['id']}")).status_code in (200, 204)
        assert (await client.get(f"/ipt/treatment-plans/{plan['id']}")).status_code == 410


class TestRevise:
    async def test_a_revision_writes_new_versions_only_of_what_changed(
        self, client: httpx.AsyncClient
    ) -> None:
        created = await _post(client, sample())
        plan = created.json()
        revised = copy.deepcopy(plan)
        revised["goals"][0]["objectives"][1]["description"] = "Question self-blame about the break-up"
        response = await client.put(
            f"/ipt/treatment-plans/{plan['id']}", json=revised, headers={"If-Match": created.headers["etag"]}
        )
        assert response.status_code == 200, response.text
        assert response.json() == revised
        assert response.headers["etag"] != created.headers["etag"]
        changed = plan["goals"][0]["objectives"][1]["id"]
        assert await _version(client, f"Goal/{changed}") == "2"
        assert await _version(client, f"CarePlan/{plan['id']}") == "1"
        assert await _version(client, f"CareTeam/{plan['care_team']['id']}") == "1"
        assert await _version(client, f"Condition/{plan['diagnoses'][0]['id']}") == "1"
        assert await _version(client, f"Patient/{plan['client']['id']}") == "1"
        for goal in plan["goals"]:
            for resource_id in [goal["id"], *(o["id"] for o in goal["objectives"])]:
                if resource_id != changed:
                    assert await _version(client, f"Goal/{resource_id}") == "1"

    async def test_adding_a_goal_creates_it_and_changes_the_careplan(self, client: httpx.AsyncClient) -> None:
        plan = (await _post(client, sample())).json()
        revised = copy.deepcopy(plan)
        revised["goals"].append(
            {"description": "Return to the running club", "problem_area": "interpersonal-deficits"}
        )
        response = await client.put(f"/ipt/treatment-plans/{plan['id']}", json=revised)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["goals"][-1]["id"]
        assert await _version(client, f"CarePlan/{plan['id']}") == "2"

    async def test_unchanged_revision_writes_nothing(
        self, client: httpx.AsyncClient, engine: AsyncEngine
    ) -> None:
        created = await _post(client, sample())
        before = await _rows(engine)
        response = await client.put(
            f"/ipt/treatment-plans/{created.json()['id']}",
            json=created.json(),
            headers={"If-Match": created.headers["etag"]},
        )
        assert response.status_code == 200
        assert response.headers["etag"] == created.headers["etag"]
        assert await _rows(engine) == before

    async def test_stale_if_match_is_412_and_writes_nothing(
        self, client: httpx.AsyncClient, engine: AsyncEngine
    ) -> None:
        created = await _post(client, sample())
        plan = created.json()
        # Someone edits a Goal through /fhir: the plan's ETag read before is now stale.
        goal = (await client.get(f"/fhir/Goal/{plan['goals'][3]['id']}")).json()
        goal["description"]["text"] = "Lift mood"
        assert (await client.put(f"/fhir/Goal/{goal['id']}", json=goal, headers=FHIR_JSON)).status_code == 200
        before = await _rows(engine)
        revised = copy.deepcopy(plan)
        revised["prognosis"] = "Good"
        response = await client.put(
            f"/ipt/treatment-plans/{plan['id']}", json=revised, headers={"If-Match": created.headers["etag"]}
        )
        assert response.status_code == 412
        assert response.json()["issue"][0]["expression"] == ["If-Match"]
        assert await _rows(engine) == before
        # The edit made through /fhir shows through /ipt.
        current = await client.get(f"/ipt/treatment-plans/{plan['id']}")
        assert current.json()["goals"][3]["description"] == "Lift mood"
        assert current.headers["etag"] != created.headers["etag"]

    async def test_an_id_of_another_plan_is_refused(
        self, client: httpx.AsyncClient, engine: AsyncEngine
    ) -> None:
        first = (await _post(client, sample())).json()
        second = (await _post(client, sample())).json()
        revised = copy.deepcopy(second)
        revised["goals"][0]["id"] = first["goals"][0]["id"]
        before = await _rows(engine)
        response = await client.put(f"/ipt/treatment-plans/{second['id']}", json=revised)
        assert response.status_code == 422
        assert response.json()["issue"][0]["expression"] == ["goals[0].id"]
        assert await _rows(engine) == before

    async def test_invalid_revision_is_422_and_writes_nothing(
        self, client: httpx.AsyncClient, engine: AsyncEngine
    ) -> None:
        plan = (await _post(client, sample())).json()
        revised = copy.deepcopy(plan)
        revised["structure"]["sessions_max"] = 8
        before = await _rows(engine)
        response = await client.put(f"/ipt/treatment-plans/{plan['id']}", json=revised)
        assert response.status_code == 422
        expressions = [e for issue in response.json()["issue"] for e in issue.get("expression", [])]
        assert "structure.sessions_max" in expressions or "phases[1].sessions.last" in expressions
        assert await _rows(engine) == before

    async def test_unknown_plan_is_404(self, client: httpx.AsyncClient) -> None:
        response = await client.put("/ipt/treatment-plans/nope", json=sample())
        assert response.status_code == 404


class TestList:
    async def test_plans_of_a_patient(self, client: httpx.AsyncClient) -> None:
        first = (await _post(client, sample())).json()
        second = (await _post(client, sample())).json()
        other = sample()
        other["client"]["identifiers"] = [
            {"system": "http://clinic.example.org/fhir/sid/mrn", "value": "MRN-2"}
        ]
        await _post(client, other)
        patient = first["client"]["id"]
        response = await client.get("/ipt/treatment-plans", params={"patient": f"Patient/{patient}"})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["patient"] == f"Patient/{patient}"
        assert body["total"] == 2
        assert {p["id"] for p in body["plans"]} == {first["id"], second["id"]}
        assert body["unreadable"] == []
        bare = await client.get("/ipt/treatment-plans", params={"patient": patient})
        assert bare.json()["total"] == 2

    async def test_no_plans(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/ipt/treatment-plans", params={"patient": "nobody"})
        assert response.status_code == 200
        assert response.json()["plans"] == []

    async def test_patient_is_required(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/ipt/treatment-plans")
        assert response.status_code == 400
        assert response.json()["issue"][0]["expression"] == ["patient"]


class TestTwoFaces:
    async def test_a_plan_through_fhir_is_an_ordinary_careplan(self, client: httpx.AsyncClient) -> None:
        plan = (await _post(client, sample())).json()
        careplan = (await client.get(f"/fhir/CarePlan/{plan['id']}")).json()
        assert careplan["subject"] == {"reference": f"Patient/{plan['client']['id']}"}
        assert careplan["author"] == {"reference": f"Practitioner/{plan['therapist']['id']}"}
        assert careplan["careTeam"] == [{"reference": f"CareTeam/{plan['care_team']['id']}"}]
        assert careplan["status"] == "active"
        found = (
            await client.get("/fhir/CarePlan", params={"subject": f"Patient/{plan['client']['id']}"})
        ).json()
        assert [e["resource"]["id"] for e in found["entry"]] == [plan["id"]]
        goal = (await client.get(f"/fhir/Goal/{plan['goals'][0]['id']}")).json()
        assert goal["description"]["text"] == sample()["goals"][0]["description"]

    async def test_a_careplan_written_through_fhir_reads_back_through_ipt(
        self, client: httpx.AsyncClient
    ) -> None:
        # An EHR writes the plan's resources through /fhir as a transaction of the mapping's shape.
        bundle = to_fhir_transaction(TreatmentPlan.model_validate(sample()))
        response = await client.post("/fhir", json=bundle, headers=FHIR_JSON)
        assert response.status_code == 200, response.text
        locations = [e["response"]["location"] for e in response.json()["entry"]]
        plan_id = next(loc.split("/")[1] for loc in locations if loc.startswith("CarePlan/"))
        read = await client.get(f"/ipt/treatment-plans/{plan_id}")
        assert read.status_code == 200, read.text
        assert canonical(read.json()) == canonical(sample())

    async def test_a_hand_made_careplan_reads_back_through_ipt(self, client: httpx.AsyncClient) -> None:
        async def create(resource: dict[str, Any]) -> str:
            response = await client.post(
                f"/fhir/{resource['resourceType']}", json=resource, headers=FHIR_JSON
            )
            assert response.status_code == 201, response.text
            return str(response.json()["id"])

        patient = await create(
            {
                "resourceType": "Patient",
                "identifier": [{"system": "urn:example:mrn", "value": "7"}],
                "name": [{"text": "Sam Doe"}],
            }
        )
        therapist = await create(
            {
                "resourceType": "Practitioner",
                "identifier": [{"system": "urn:example:staff", "value": "9"}],
                "name": [{"text": "Dr. Lee"}],
            }
        )
        condition = await create(
            {
                "resourceType": "Condition",
                "clinicalStatus": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                            "code": "active",
                        }
                    ]
                },
                "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "F32.1"}]},
                "subject": {"reference": f"Patient/{patient}"},
            }
        )
        team = await create(
            {
                "resourceType": "CareTeam",
                "subject": {"reference": f"Patient/{patient}"},
                "participant": [
                    {
                        "role": [{"coding": [{"system": "http://snomed.info/sct", "code": "224588003"}]}],
                        "member": {"reference": f"Practitioner/{therapist}"},
                    }
                ],
            }
        )
        ext = "http://example.org/fhir/ipt/StructureDefinition"
        careplan = await create(
            {
                "resourceType": "CarePlan",
                "status": "active",
                "intent": "plan",
                "subject": {"reference": f"Patient/{patient}"},
                "author": {"reference": f"Practitioner/{therapist}"},
                "careTeam": [{"reference": f"CareTeam/{team}"}],
                "addresses": [{"reference": f"Condition/{condition}"}],
                "activity": [
                    {
                        "extension": [{"url": f"{ext}/ipt-activity-level", "valueCode": "course"}],
                        "detail": {
                            "status": "in-progress",
                            "scheduledTiming": {
                                "repeat": {
                                    "count": 12,
                                    "countMax": 16,
                                    "duration": 50,
                                    "durationUnit": "min",
                                    "frequency": 1,
                                    "period": 1,
                                    "periodUnit": "wk",
                                }
                            },
                        },
                    }
                ],
            }
        )
        response = await client.get(f"/ipt/treatment-plans/{careplan}")
        assert response.status_code == 200, response.text
        plan = response.json()
        assert plan["client"]["id"] == patient
        assert plan["client"]["identifiers"] == [{"system": "urn:example:mrn", "value": "7"}]
        assert plan["therapist"]["id"] == therapist
        assert plan["diagnoses"][0]["id"] == condition
        assert plan["diagnoses"][0]["code"]["codings"][0]["code"] == "F32.1"
        assert plan["care_team"]["id"] == team
        assert plan["structure"]["sessions_max"] == 16


class TestMalformedReferences:
    """A reference is read one way by compartments, reference checks, search and this mapping
    (`mappings.references`): `Patient/<A>/Patient/<B>` cannot make B the client of A's plan."""

    async def _plan_and_bystander(self, client: httpx.AsyncClient) -> tuple[dict[str, Any], str]:
        plan = (await _post(client, sample())).json()
        bystander = {"resourceType": "Patient", "name": [{"family": "Bystander"}]}
        created = await client.post("/fhir/Patient", json=bystander, headers=FHIR_JSON)
        assert created.status_code == 201
        return plan, str(created.json()["id"])

    async def test_a_malformed_subject_is_refused_and_the_plan_keeps_its_client(
        self, client: httpx.AsyncClient
    ) -> None:
        plan, other = await self._plan_and_bystander(client)
        careplan = (await client.get(f"/fhir/CarePlan/{plan['id']}")).json()
        careplan["subject"] = {"reference": f"Patient/{plan['client']['id']}/Patient/{other}"}

        response = await client.put(f"/fhir/CarePlan/{plan['id']}", json=careplan, headers=FHIR_JSON)

        assert response.status_code == 422, response.text
        assert response.json()["issue"][0]["expression"] == ["CarePlan.subject"]
        read = await client.get(f"/ipt/treatment-plans/{plan['id']}")
        assert read.status_code == 200, read.text
        assert read.json()["client"] == plan["client"]

    async def test_a_stored_malformed_subject_is_not_read_as_either_patient(
        self, client: httpx.AsyncClient, engine: AsyncEngine
    ) -> None:
        plan, other = await self._plan_and_bystander(client)
        careplan = (await client.get(f"/fhir/CarePlan/{plan['id']}")).json()
        careplan["subject"] = {"reference": f"Patient/{plan['client']['id']}/Patient/{other}"}
        # As written before writes refused it: straight to storage, past the write rules.
        async with engine.begin() as connection:
            await ResourceRepository(connection).update("CarePlan", plan["id"], careplan)
            compartment = (
                await connection.execute(
                    select(resource_rows.c.patient_id).where(
                        resource_rows.c.resource_type == "CarePlan", resource_rows.c.id == plan["id"]
                    )
                )
            ).scalar_one()

        response = await client.get(f"/ipt/treatment-plans/{plan['id']}")

        assert compartment is None
        assert response.status_code == 422
        assert response.json()["issue"][0]["expression"] == ["CarePlan.subject"]
        assert "Bystander" not in response.text

    async def test_an_absolute_subject_is_not_read_as_the_local_patient_it_ends_in(
        self, client: httpx.AsyncClient
    ) -> None:
        plan, other = await self._plan_and_bystander(client)
        careplan = (await client.get(f"/fhir/CarePlan/{plan['id']}")).json()
        careplan["subject"] = {"reference": f"https://elsewhere.example/fhir/Patient/{other}"}
        assert (
            await client.put(f"/fhir/CarePlan/{plan['id']}", json=careplan, headers=FHIR_JSON)
        ).status_code == 200

        response = await client.get(f"/ipt/treatment-plans/{plan['id']}")

        assert response.status_code == 422
        assert response.json()["issue"][0]["expression"] == ["CarePlan.subject"]
        assert "Bystander" not in response.text

    async def test_from_careplan_refuses_a_malformed_subject(self, client: httpx.AsyncClient) -> None:
        plan, other = await self._plan_and_bystander(client)
        careplan = (await client.get(f"/fhir/CarePlan/{plan['id']}")).json()
        careplan["subject"] = {"reference": f"Patient/{plan['client']['id']}/Patient/{other}"}

        response = await client.post("/ipt/treatment-plans/$from-careplan", json=careplan)

        assert response.status_code == 422, response.text
        assert response.json()["issue"][0]["expression"] == ["CarePlan.subject"]
        assert "Bystander" not in response.text
