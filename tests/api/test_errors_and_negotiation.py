"""Errors and content negotiation: every failure is an OperationOutcome and changes nothing.

Spec: https://hl7.org/fhir/R4/http.html#mime-type, https://hl7.org/fhir/R4/http.html#2.21.0.5 (status codes),
https://hl7.org/fhir/R4/terminologies.html#required (required bindings).
"""

import httpx
import pytest

from tests.factories import FHIR_JSON, patient, questionnaire_response


def _issue(response: httpx.Response) -> dict[str, object]:
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    issue: dict[str, object] = body["issue"][0]
    return issue


async def _count_versions(client: httpx.AsyncClient) -> int:
    bundle = (await client.get("/fhir/_history", params={"_count": 500})).json()
    return len(bundle.get("entry", []))


class TestContentNegotiation:
    @pytest.mark.parametrize(
        "accept", ["application/fhir+xml", "application/xml", "text/xml, application/xml;q=0.9"]
    )
    async def test_xml_accept_is_406(self, client: httpx.AsyncClient, accept: str) -> None:
        response = await client.get("/fhir/metadata", headers={"Accept": accept})
        assert response.status_code == 406
        assert _issue(response)["expression"] == ["Accept"]

    @pytest.mark.parametrize(
        "accept", ["application/fhir+json", "application/json", "*/*", "text/html, */*;q=0.1"]
    )
    async def test_json_accept_is_served(self, client: httpx.AsyncClient, accept: str) -> None:
        response = await client.get("/fhir/metadata", headers={"Accept": accept})
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/fhir+json")

    @pytest.mark.parametrize("fmt", ["json", "application/fhir+json", "application/json"])
    async def test_format_json_honoured(self, client: httpx.AsyncClient, fmt: str) -> None:
        response = await client.get(
            "/fhir/metadata", params={"_format": fmt}, headers={"Accept": "application/xml"}
        )
        assert response.status_code == 200

    @pytest.mark.parametrize("fmt", ["xml", "application/fhir+xml", "html"])
    async def test_format_xml_is_406(self, client: httpx.AsyncClient, fmt: str) -> None:
        response = await client.get("/fhir/metadata", params={"_format": fmt})
        assert response.status_code == 406
        assert _issue(response)["expression"] == ["_format"]

    @pytest.mark.parametrize(
        ("content_type", "body"),
        [
            ("application/fhir+xml", b'<Patient xmlns="http://hl7.org/fhir"/>'),
            ("application/xml", b"<Patient/>"),
            ("application/x-www-form-urlencoded", b"resourceType=Patient"),
            ("text/plain", b'{"resourceType":"Patient"}'),
        ],
    )
    async def test_non_json_body_is_415(
        self, client: httpx.AsyncClient, content_type: str, body: bytes
    ) -> None:
        response = await client.post("/fhir/Patient", content=body, headers={"Content-Type": content_type})
        assert response.status_code == 415
        assert _issue(response)["expression"] == ["Content-Type"]
        assert await _count_versions(client) == 0


class TestMalformedInput:
    @pytest.mark.parametrize("body", [b"{", b"", b"[1,2]", b'"Patient"', b"\xff\xfe", b'{"resourceType":'])
    async def test_broken_json_is_400(self, client: httpx.AsyncClient, body: bytes) -> None:
        response = await client.post("/fhir/Patient", content=body, headers=FHIR_JSON)
        assert response.status_code == 400
        assert _issue(response)["severity"] == "error"
        assert await _count_versions(client) == 0

    async def test_wrong_resource_type_is_400(self, client: httpx.AsyncClient) -> None:
        response = await client.post("/fhir/Patient", json=questionnaire_response(), headers=FHIR_JSON)
        assert response.status_code == 400
        assert _issue(response)["expression"] == ["Patient.resourceType"]

    async def test_unknown_element_is_400_naming_it(self, client: httpx.AsyncClient) -> None:
        response = await client.post("/fhir/Patient", json=patient(favouriteColour="blue"), headers=FHIR_JSON)
        assert response.status_code == 400
        assert _issue(response)["expression"] == ["Patient.favouriteColour"]

    async def test_wrong_datatype_is_400_naming_element(self, client: httpx.AsyncClient) -> None:
        response = await client.post("/fhir/Patient", json=patient(birthDate="17/04/1992"), headers=FHIR_JSON)
        assert response.status_code == 400
        assert _issue(response)["expression"] == ["Patient.birthDate"]

    async def test_nested_error_path(self, client: httpx.AsyncClient) -> None:
        resource = questionnaire_response()
        resource["item"] = [{"linkId": "a", "answer": [{"valueInteger": "many"}]}]
        response = await client.post("/fhir/QuestionnaireResponse", json=resource, headers=FHIR_JSON)
        assert response.status_code == 400
        expressions = [i["expression"][0] for i in response.json()["issue"]]
        assert "QuestionnaireResponse.item[0].answer[0].valueInteger" in expressions

    async def test_missing_required_element_is_400(self, client: httpx.AsyncClient) -> None:
        response = await client.post("/fhir/CarePlan", json={"resourceType": "CarePlan"}, headers=FHIR_JSON)
        assert response.status_code == 400
        assert await _count_versions(client) == 0


class TestRequiredBindings:
    async def test_bogus_questionnaire_response_status_is_refused(self, client: httpx.AsyncClient) -> None:
        response = await client.post(
            "/fhir/QuestionnaireResponse", json=questionnaire_response(status="bogus"), headers=FHIR_JSON
        )
        assert response.status_code == 400
        issue = _issue(response)
        assert issue["code"] == "code-invalid"
        assert issue["expression"] == ["QuestionnaireResponse.status"]
        assert "completed" in str(issue["diagnostics"])
        assert await _count_versions(client) == 0

    @pytest.mark.parametrize(
        ("resource", "expression"),
        [
            (patient(gender="mostly"), "Patient.gender"),
            (patient(telecom=[{"system": "carrier-pigeon", "value": "x"}]), "Patient.telecom[0].system"),
            (
                {
                    "resourceType": "CarePlan",
                    "status": "active",
                    "intent": "wish",
                    "subject": {"reference": "Patient/1"},
                },
                "CarePlan.intent",
            ),
            (
                {
                    "resourceType": "Goal",
                    "lifecycleStatus": "dreaming",
                    "description": {"text": "x"},
                    "subject": {"reference": "Patient/1"},
                },
                "Goal.lifecycleStatus",
            ),
            (
                {
                    "resourceType": "Questionnaire",
                    "status": "active",
                    "item": [{"linkId": "a", "type": "essay"}],
                },
                "Questionnaire.item[0].type",
            ),
        ],
    )
    async def test_each_required_code_is_checked(
        self, client: httpx.AsyncClient, resource: dict[str, object], expression: str
    ) -> None:
        response = await client.post(f"/fhir/{resource['resourceType']}", json=resource, headers=FHIR_JSON)
        assert response.status_code == 400
        assert _issue(response)["expression"] == [expression]

    async def test_update_with_bad_code_changes_nothing(self, client: httpx.AsyncClient) -> None:
        created = (
            await client.post("/fhir/Patient", json=patient(gender="female"), headers=FHIR_JSON)
        ).json()
        url = f"/fhir/Patient/{created['id']}"
        response = await client.put(url, json={**created, "gender": "bogus"}, headers=FHIR_JSON)
        assert response.status_code == 400
        current = (await client.get(url)).json()
        assert current["gender"] == "female"
        assert current["meta"]["versionId"] == "1"


class TestRouting:
    async def test_unknown_type_is_404_outcome(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/fhir/Spaceship/1")
        assert response.status_code == 404
        assert _issue(response)["code"] == "not-found"

    async def test_unsupported_method_is_405_outcome(self, client: httpx.AsyncClient) -> None:
        response = await client.post("/fhir/metadata", json={})
        assert response.status_code == 405
        assert _issue(response)["code"] == "not-supported"

    async def test_vread_with_non_numeric_version_is_400(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/fhir/Patient/a/_history/latest")
        assert response.status_code == 400
        assert _issue(response)["expression"] == ["version_id"]

    async def test_body_over_limit_is_413(self, client: httpx.AsyncClient, app: object) -> None:
        limit = app.state.settings.max_body_bytes  # type: ignore[attr-defined]
        big = patient(text={"status": "generated", "div": "<div>" + "x" * limit + "</div>"})
        response = await client.post("/fhir/Patient", json=big, headers=FHIR_JSON)
        assert response.status_code == 413
        assert _issue(response)["code"] == "too-costly"
