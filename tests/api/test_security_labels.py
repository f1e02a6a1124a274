"""Clinical resources are stored with confidentiality R (or stricter) and the PSY sensitivity label.

Spec: https://hl7.org/fhir/R4/security-labels.html
"""

import httpx
import pytest

from tests.factories import FHIR_JSON, patient

CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"


def _goal(**meta: object) -> dict[str, object]:
    goal: dict[str, object] = {
        "resourceType": "Goal",
        "lifecycleStatus": "active",
        "description": {"text": "Reconnect with friends"},
        "subject": {"reference": "Patient/a"},
    }
    if meta:
        goal["meta"] = meta
    return goal


def _labels(resource: dict[str, object]) -> set[tuple[str, str]]:
    return {(label["system"], label["code"]) for label in resource["meta"]["security"]}  # type: ignore[index]


@pytest.fixture
async def seeded(client: httpx.AsyncClient) -> httpx.AsyncClient:
    await client.put("/fhir/Patient/a", json=patient(id="a"), headers=FHIR_JSON)
    return client


class TestDefaultLabels:
    async def test_clinical_resources_get_r_and_psy(self, seeded: httpx.AsyncClient) -> None:
        created = (await seeded.post("/fhir/Goal", json=_goal(), headers=FHIR_JSON)).json()
        assert _labels(created) == {(CONFIDENTIALITY, "R"), (ACT_CODE, "PSY")}
        stored = (await seeded.get(f"/fhir/Goal/{created['id']}")).json()
        assert _labels(stored) == {(CONFIDENTIALITY, "R"), (ACT_CODE, "PSY")}

    async def test_stricter_confidentiality_is_kept(self, seeded: httpx.AsyncClient) -> None:
        very = [{"system": CONFIDENTIALITY, "code": "V"}]
        created = (await seeded.post("/fhir/Goal", json=_goal(security=very), headers=FHIR_JSON)).json()
        assert _labels(created) == {(CONFIDENTIALITY, "V"), (ACT_CODE, "PSY")}

    async def test_laxer_confidentiality_is_raised(self, seeded: httpx.AsyncClient) -> None:
        normal = [{"system": CONFIDENTIALITY, "code": "N"}]
        created = (await seeded.post("/fhir/Goal", json=_goal(security=normal), headers=FHIR_JSON)).json()
        assert _labels(created) == {(CONFIDENTIALITY, "R"), (ACT_CODE, "PSY")}

    async def test_other_labels_are_kept(self, seeded: httpx.AsyncClient) -> None:
        notes = [{"system": ACT_CODE, "code": "PSYTHPN"}]
        created = (await seeded.post("/fhir/Goal", json=_goal(security=notes), headers=FHIR_JSON)).json()
        assert (ACT_CODE, "PSYTHPN") in _labels(created)

    async def test_resending_unlabelled_content_is_not_a_change(self, seeded: httpx.AsyncClient) -> None:
        created = (await seeded.post("/fhir/Goal", json=_goal(), headers=FHIR_JSON)).json()
        again = await seeded.put(
            f"/fhir/Goal/{created['id']}", json={**_goal(), "id": created["id"]}, headers=FHIR_JSON
        )
        assert again.json()["meta"]["versionId"] == "1"

    async def test_administrative_and_content_resources_are_not_labelled(
        self, seeded: httpx.AsyncClient
    ) -> None:
        stored = (await seeded.get("/fhir/Patient/a")).json()
        assert "security" not in stored.get("meta", {})
