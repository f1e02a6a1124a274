"""Search sees only what the token may read: a patient's compartment, and the audit trail only by name.

Specs: https://hl7.org/fhir/R4/compartmentdefinition-patient.html,
https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html, https://hl7.org/fhir/R4/search.html
"""

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.factories import FHIR_JSON, patient, practitioner

Token = Callable[..., str]


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **FHIR_JSON}


def _ids(bundle: dict[str, Any], mode: str | None = None) -> set[tuple[str, str]]:
    return {
        (e["resource"]["resourceType"], e["resource"]["id"])
        for e in bundle.get("entry", [])
        if mode is None or e["search"]["mode"] == mode
    }


@pytest.fixture
async def two_patients(anonymous_client: httpx.AsyncClient, token: Token) -> dict[str, str]:
    """Patients a and b, each with a Goal, a CarePlan addressing it and a CareTeam of one shared
    practitioner."""
    admin = _auth(token())
    ids = {
        "practitioner": (
            await anonymous_client.post("/fhir/Practitioner", json=practitioner(), headers=admin)
        ).json()["id"]
    }
    for name in ("a", "b"):
        assert (
            await anonymous_client.put(f"/fhir/Patient/{name}", json=patient(id=name), headers=admin)
        ).status_code == 201
        goal = {
            "resourceType": "Goal",
            "lifecycleStatus": "active",
            "description": {"text": f"goal of {name}"},
            "subject": {"reference": f"Patient/{name}"},
        }
        ids[f"goal_{name}"] = (await anonymous_client.post("/fhir/Goal", json=goal, headers=admin)).json()[
            "id"
        ]
        plan = {
            "resourceType": "CarePlan",
            "status": "active",
            "intent": "plan",
            "subject": {"reference": f"Patient/{name}"},
            "goal": [{"reference": f"Goal/{ids[f'goal_{name}']}"}],
        }
        created = await anonymous_client.post("/fhir/CarePlan", json=plan, headers=admin)
        assert created.status_code == 201, created.text
        ids[f"plan_{name}"] = created.json()["id"]
        team = {
            "resourceType": "CareTeam",
            "status": "active",
            "subject": {"reference": f"Patient/{name}"},
            "participant": [{"member": {"reference": f"Practitioner/{ids['practitioner']}"}}],
        }
        created = await anonymous_client.post("/fhir/CareTeam", json=team, headers=admin)
        assert created.status_code == 201, created.text
        ids[f"team_{name}"] = created.json()["id"]
    return ids


class TestPatientToken:
    async def test_type_search_finds_only_its_patients_resources(
        self, anonymous_client: httpx.AsyncClient, token: Token, two_patients: dict[str, str]
    ) -> None:
        mine = _auth(token("patient/*.rs", patient="a"))
        goals = (await anonymous_client.get("/fhir/Goal", headers=mine)).json()
        assert _ids(goals) == {("Goal", two_patients["goal_a"])}
        assert goals["total"] == 1
        patients = (await anonymous_client.get("/fhir/Patient", headers=mine)).json()
        assert _ids(patients) == {("Patient", "a")}
        # Asking for the other patient by name finds nothing rather than refusing, as a read answers 404.
        theirs = await anonymous_client.get("/fhir/Goal", params={"subject": "Patient/b"}, headers=mine)
        assert theirs.status_code == 200
        assert theirs.json()["total"] == 0
        counted = await anonymous_client.get("/fhir/Goal", params={"_summary": "count"}, headers=mine)
        assert counted.json()["total"] == 1

    async def test_includes_stay_inside_the_compartment(
        self, anonymous_client: httpx.AsyncClient, token: Token, two_patients: dict[str, str]
    ) -> None:
        mine = _auth(token("patient/*.rs", patient="a"))
        everything = await anonymous_client.get(
            "/fhir/Practitioner",
            params={"_revinclude": "CareTeam:participant"},
            headers=mine,
        )
        assert _ids(everything.json(), "include") == {("CareTeam", two_patients["team_a"])}
        wildcard = await anonymous_client.get("/fhir/Practitioner", params={"_revinclude": "*"}, headers=mine)
        assert _ids(wildcard.json(), "include") == {("CareTeam", two_patients["team_a"])}
        forward = await anonymous_client.get(
            "/fhir/CareTeam", params={"_include": "CareTeam:participant"}, headers=mine
        )
        assert _ids(forward.json(), "include") == {("Practitioner", two_patients["practitioner"])}
        admin = _auth(token())
        iterated = await anonymous_client.get(
            "/fhir/Goal",
            params={"_revinclude": "CarePlan:goal", "_include:iterate": "CarePlan:subject"},
            headers=mine,
        )
        assert _ids(iterated.json()) == {
            ("Goal", two_patients["goal_a"]),
            ("CarePlan", two_patients["plan_a"]),
            ("Patient", "a"),
        }
        full = await anonymous_client.get(
            "/fhir/Goal", params={"_revinclude": "CarePlan:goal"}, headers=admin
        )
        assert ("CarePlan", two_patients["plan_b"]) in _ids(full.json(), "include")

    async def test_system_search_finds_only_its_patients_resources(
        self, anonymous_client: httpx.AsyncClient, token: Token, two_patients: dict[str, str]
    ) -> None:
        mine = _auth(token("patient/*.rs", patient="a"))
        typed = (await anonymous_client.get("/fhir", params={"_type": "Goal,Patient"}, headers=mine)).json()
        assert _ids(typed) == {("Goal", two_patients["goal_a"]), ("Patient", "a")}
        untyped = (await anonymous_client.get("/fhir", params={"_count": "500"}, headers=mine)).json()
        assert ("Patient", "a") in _ids(untyped)
        assert not {
            ("Patient", "b"),
            ("Goal", two_patients["goal_b"]),
            ("CarePlan", two_patients["plan_b"]),
        } & _ids(untyped)

    async def test_system_search_needs_only_the_named_types(
        self, anonymous_client: httpx.AsyncClient, token: Token, two_patients: dict[str, str]
    ) -> None:
        only_patients = _auth(token("patient/Patient.rs", patient="a"))
        allowed = await anonymous_client.get("/fhir", params={"_type": "Patient"}, headers=only_patients)
        assert allowed.status_code == 200
        assert _ids(allowed.json()) == {("Patient", "a")}
        refused = await anonymous_client.get("/fhir", params={"_type": "Patient,Goal"}, headers=only_patients)
        assert refused.status_code == 403
        assert refused.json()["issue"][0]["expression"] == ["Goal"]


class TestAuditTrailInSearch:
    async def test_searches_without_an_audit_scope_never_return_audit_events(
        self, anonymous_client: httpx.AsyncClient, token: Token, two_patients: dict[str, str]
    ) -> None:
        admin = _auth(token())
        # The seeding and these searches have written AuditEvents that refer to patient a.
        revincluded = await anonymous_client.get(
            "/fhir/Patient", params={"_id": "a", "_revinclude": "*"}, headers=admin
        )
        assert revincluded.status_code == 200
        assert {t for t, _ in _ids(revincluded.json(), "include")} == {"Goal", "CarePlan", "CareTeam"}
        untyped = (await anonymous_client.get("/fhir", params={"_count": "500"}, headers=admin)).json()
        assert "AuditEvent" not in {t for t, _ in _ids(untyped)}
        named = await anonymous_client.get("/fhir", params={"_type": "AuditEvent"}, headers=admin)
        assert named.status_code == 403
        assert named.json()["issue"][0]["expression"] == ["AuditEvent"]

    async def test_an_audit_scope_searches_the_trail_by_name(
        self, anonymous_client: httpx.AsyncClient, token: Token, two_patients: dict[str, str]
    ) -> None:
        auditor = _auth(token("system/*.rs system/AuditEvent.rs"))
        named = await anonymous_client.get("/fhir", params={"_type": "AuditEvent"}, headers=auditor)
        assert named.status_code == 200
        assert {t for t, _ in _ids(named.json())} == {"AuditEvent"}
        revincluded = await anonymous_client.get(
            "/fhir/Patient", params={"_id": "a", "_revinclude": "*"}, headers=auditor
        )
        assert "AuditEvent" in {t for t, _ in _ids(revincluded.json(), "include")}
        untyped = (await anonymous_client.get("/fhir", params={"_count": "500"}, headers=auditor)).json()
        assert "AuditEvent" not in {t for t, _ in _ids(untyped)}

    async def test_a_patient_audit_scope_does_not_open_the_trail(
        self, anonymous_client: httpx.AsyncClient, token: Token, two_patients: dict[str, str]
    ) -> None:
        patient_auditor = _auth(token("patient/*.rs patient/AuditEvent.rs", patient="a"))
        response = await anonymous_client.get("/fhir/AuditEvent", headers=patient_auditor)
        assert response.status_code == 403
        revincluded = await anonymous_client.get(
            "/fhir/Patient", params={"_revinclude": "*"}, headers=patient_auditor
        )
        assert "AuditEvent" not in {t for t, _ in _ids(revincluded.json(), "include")}
