"""The operations over HTTP on PostgreSQL: each answers as its definition says, and none stores anything.

Spec clauses under test:
- https://hl7.org/fhir/R4/resource-operation-validate.html: `$validate` at type and instance level, body a
  resource or `Parameters` (`resource`, `mode` create/update/delete); 200 OperationOutcome whether valid or
  not; `update`/`delete` only on an instance.
- http://hl7.org/fhir/uv/sdc/OperationDefinition/Questionnaire-populate: the form by instance, `canonical`,
  `questionnaire`, `identifier`; `subject`; `context` user; output `response` (in-progress) and `issues`.
- http://hl7.org/fhir/uv/sdc/OperationDefinition/QuestionnaireResponse-extract: instance and type level,
  output `return` (a transaction Bundle of Observations) and `issues`.
- https://hl7.org/fhir/R4/capabilitystatement.html: every operation listed with its definition canonical.
"""

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from mappings.content import load_content
from service.fhir.examples import EXAMPLES
from service.fhir.registry import RESOURCE_DEFINITIONS
from tests.conftest import stored_audit_events
from tests.factories import (
    FHIR_JSON,
    WORKSHEET_URL,
    closeness_code_system,
    closeness_value_set,
    patient,
    phq9_response,
    practitioner,
    worksheet,
    worksheet_response,
)

QR = "/fhir/QuestionnaireResponse"
PHQ9 = "http://example.org/fhir/ipt/Questionnaire/phq-9|1.0.0"


async def _put(client: httpx.AsyncClient, resource: dict[str, Any]) -> dict[str, Any]:
    response = await client.put(
        f"/fhir/{resource['resourceType']}/{resource['id']}", json=resource, headers=FHIR_JSON
    )
    assert response.status_code in (200, 201), response.text
    body: dict[str, Any] = response.json()
    return body


async def _versions(client: httpx.AsyncClient) -> int:
    bundle = (await client.get("/fhir/_history", params={"_count": 500})).json()
    return len(bundle.get("entry", []))


def _issues(outcome: dict[str, Any], severity: str = "error") -> list[tuple[str | None, str]]:
    assert outcome["resourceType"] == "OperationOutcome", outcome
    return [
        ((issue.get("expression") or [None])[0], issue["code"])
        for issue in outcome["issue"]
        if issue["severity"] == severity
    ]


def _parameter(parameters: dict[str, Any], name: str) -> dict[str, Any]:
    assert parameters["resourceType"] == "Parameters", parameters
    found: dict[str, Any] = next(p["resource"] for p in parameters["parameter"] if p["name"] == name)
    return found


@pytest.fixture
async def setup(client: httpx.AsyncClient) -> httpx.AsyncClient:
    await _put(client, patient(id="p1"))
    await _put(client, closeness_code_system())
    await _put(client, closeness_value_set())
    await _put(client, worksheet())
    form = next(r for r in load_content() if r["resourceType"] == "Questionnaire" and r["id"] == "phq-9")
    await _put(client, form)
    return client


async def _stays_unchanged(client: httpx.AsyncClient, request: Any) -> httpx.Response:
    before = await _versions(client)
    response: httpx.Response = await request
    assert await _versions(client) == before, "an operation stored something"
    return response


class TestValidate:
    async def test_a_valid_response_is_accepted_and_not_stored(self, setup: httpx.AsyncClient) -> None:
        response = await _stays_unchanged(
            setup, setup.post(f"{QR}/$validate", json=worksheet_response(), headers=FHIR_JSON)
        )
        assert response.status_code == 200
        outcome = response.json()
        assert [i["severity"] for i in outcome["issue"]] == ["information"]

    async def test_an_invalid_response_gets_200_with_every_error(self, setup: httpx.AsyncClient) -> None:
        sent = worksheet_response(subject="Patient/ghost", mood=12)
        response = await _stays_unchanged(setup, setup.post(f"{QR}/$validate", json=sent, headers=FHIR_JSON))
        assert response.status_code == 200
        assert _issues(response.json()) == [
            ("QuestionnaireResponse.subject", "not-found"),
            ("QuestionnaireResponse.item[0].answer[0]", "value"),
        ]

    async def test_warnings_of_an_in_progress_response(self, setup: httpx.AsyncClient) -> None:
        sent = worksheet_response(status="in-progress")
        del sent["item"][0]
        response = await setup.post(f"{QR}/$validate", json=sent, headers=FHIR_JSON)
        outcome = response.json()
        assert _issues(outcome) == []
        assert ("QuestionnaireResponse", "required") in _issues(outcome, "warning")
        assert "How was your mood" in str(outcome)

    async def test_parameters_with_mode_create(self, setup: httpx.AsyncClient) -> None:
        body = {
            "resourceType": "Parameters",
            "parameter": [
                {"name": "mode", "valueCode": "create"},
                {"name": "resource", "resource": worksheet_response(status="amended")},
            ],
        }
        response = await setup.post(f"{QR}/$validate", json=body, headers=FHIR_JSON)
        assert response.status_code == 200
        assert _issues(response.json()) == [("QuestionnaireResponse.status", "business-rule")]

    async def test_structural_errors_are_reported_not_raised(self, setup: httpx.AsyncClient) -> None:
        sent = {**worksheet_response(), "favouriteColour": "blue"}
        response = await setup.post(f"{QR}/$validate", json=sent, headers=FHIR_JSON)
        assert response.status_code == 200
        assert _issues(response.json()) == [("QuestionnaireResponse.favouriteColour", "structure")]

    async def test_update_mode_judges_the_status_change(self, setup: httpx.AsyncClient) -> None:
        created = (await setup.post(QR, json=worksheet_response(), headers=FHIR_JSON)).json()
        url = f"{QR}/{created['id']}/$validate"

        def body(resource: dict[str, Any]) -> dict[str, Any]:
            return {
                "resourceType": "Parameters",
                "parameter": [
                    {"name": "mode", "valueCode": "update"},
                    {"name": "resource", "resource": resource},
                ],
            }

        back = await _stays_unchanged(setup, setup.post(url, json=body({**created, "status": "in-progress"})))
        assert _issues(back.json()) == [("QuestionnaireResponse.status", "business-rule")]
        amended = await setup.post(url, json=body({**created, "status": "amended"}))
        assert _issues(amended.json()) == []
        other = await setup.post(url, json=body({**created, "id": "other"}))
        assert ("QuestionnaireResponse.id", "invalid") in _issues(other.json())

    async def test_delete_mode(self, setup: httpx.AsyncClient) -> None:
        body = {"resourceType": "Parameters", "parameter": [{"name": "mode", "valueCode": "delete"}]}
        response = await _stays_unchanged(
            setup, setup.post("/fhir/Patient/p1/$validate", json=body, headers=FHIR_JSON)
        )
        assert response.status_code == 200
        assert response.json()["issue"][0]["severity"] == "information"
        missing = await setup.post("/fhir/Patient/ghost/$validate", json=body, headers=FHIR_JSON)
        assert missing.status_code == 404

    @pytest.mark.parametrize(
        ("url", "body", "expression"),
        [
            (
                f"{QR}/$validate",
                {"resourceType": "Parameters", "parameter": [{"name": "mode", "valueCode": "update"}]},
                "mode",
            ),
            (
                f"{QR}/$validate",
                {"resourceType": "Parameters", "parameter": [{"name": "mode", "valueCode": "nah"}]},
                "Parameters.parameter[0].valueCode",
            ),
            (
                f"{QR}/$validate",
                {"resourceType": "Parameters", "parameter": [{"name": "colour"}]},
                "Parameters.parameter[0].name",
            ),
            (
                f"{QR}/$validate",
                {"resourceType": "Parameters", "parameter": [{"name": "profile", "valueUri": "http://x"}]},
                "Parameters.parameter[0]",
            ),
            (f"{QR}/$validate", {"resourceType": "Parameters", "parameter": []}, "resource"),
        ],
    )
    async def test_requests_that_cannot_be_validated_are_400(
        self, setup: httpx.AsyncClient, url: str, body: dict[str, Any], expression: str
    ) -> None:
        response = await setup.post(url, json=body, headers=FHIR_JSON)
        assert response.status_code == 400, response.text
        assert response.json()["issue"][0]["expression"] == [expression]

    async def test_empty_or_broken_body_is_400(self, setup: httpx.AsyncClient) -> None:
        assert (await setup.post(f"{QR}/$validate", content=b"", headers=FHIR_JSON)).status_code == 400
        assert (await setup.post(f"{QR}/$validate", content=b"{", headers=FHIR_JSON)).status_code == 400
        xml = await setup.post(
            f"{QR}/$validate", content=b"<x/>", headers={"Content-Type": "application/xml"}
        )
        assert xml.status_code == 415

    @pytest.mark.parametrize("name", [spec.name for spec in RESOURCE_DEFINITIONS])
    async def test_every_served_type_has_it(self, client: httpx.AsyncClient, name: str) -> None:
        response = await client.post(f"/fhir/{name}/$validate", json=EXAMPLES[name], headers=FHIR_JSON)
        assert response.status_code == 200
        assert response.json()["resourceType"] == "OperationOutcome"


class TestPopulate:
    def _body(self, *parameters: dict[str, Any]) -> dict[str, Any]:
        return {"resourceType": "Parameters", "parameter": list(parameters)}

    SUBJECT = {"name": "subject", "valueReference": {"reference": "Patient/p1"}}

    async def test_a_fresh_response_for_the_patient(self, setup: httpx.AsyncClient) -> None:
        body = self._body({"name": "canonical", "valueCanonical": PHQ9}, self.SUBJECT)
        result = await _stays_unchanged(setup, setup.post("/fhir/Questionnaire/$populate", json=body))
        assert result.status_code == 200, result.text
        response = _parameter(result.json(), "response")
        assert response["status"] == "in-progress"
        assert response["questionnaire"] == PHQ9
        assert response["subject"] == response["author"] == {"reference": "Patient/p1"}
        assert [i["linkId"] for i in response["item"]][:2] == ["instructions", "phq9-1"]
        assert "no earlier response" in str(_parameter(result.json(), "issues"))
        stored = await setup.post(QR, json=response, headers=FHIR_JSON)
        assert stored.status_code == 201, stored.text

    async def test_prefilled_from_the_latest_response(self, setup: httpx.AsyncClient) -> None:
        await setup.post(QR, json=worksheet_response(mood=2), headers=FHIR_JSON)
        latest = (await setup.post(QR, json=worksheet_response(mood=4), headers=FHIR_JSON)).json()
        wrong = worksheet_response(mood=9)
        created = (await setup.post(QR, json=wrong, headers=FHIR_JSON)).json()
        await setup.put(
            f"{QR}/{created['id']}", json={**created, "status": "entered-in-error"}, headers=FHIR_JSON
        )
        body = self._body(self.SUBJECT)
        result = await setup.post("/fhir/Questionnaire/mood-check-1/$populate", json=body)
        response = _parameter(result.json(), "response")
        mood = next(i for i in response["item"] if i["linkId"] == "mood")
        assert mood["answer"] == [{"valueInteger": 4}]
        people = next(i for i in response["item"] if i["linkId"] == "people")
        assert people["item"][0]["answer"] == [{"valueString": "Alex"}]
        assert f"QuestionnaireResponse/{latest['id']}" in str(_parameter(result.json(), "issues"))

    async def test_its_audit_event_names_the_patient_and_the_response_it_read(
        self, setup: httpx.AsyncClient, engine: AsyncEngine, flush_audit: Callable[[], Awaitable[bool]]
    ) -> None:
        latest = (await setup.post(QR, json=worksheet_response(mood=4), headers=FHIR_JSON)).json()
        body = self._body(self.SUBJECT)
        result = await setup.post("/fhir/Questionnaire/mood-check-1/$populate", json=body)
        assert result.status_code == 200, result.text
        assert await flush_audit()
        [event] = [
            e
            for e in await stored_audit_events(engine)
            if e["subtype"][0]["code"] == "operation"  # type: ignore[index]
        ]
        named = [entity["what"]["reference"] for entity in event["entity"]]  # type: ignore[union-attr]
        assert named == [
            "Questionnaire/mood-check-1",
            "Patient/p1",
            f"QuestionnaireResponse/{latest['id']}",
        ]

    async def test_by_identifier_and_by_inline_questionnaire(self, setup: httpx.AsyncClient) -> None:
        identifier = {"system": "urn:example:worksheets", "value": "W-7"}
        await _put(setup, worksheet(identifier=[identifier]))
        by_identifier = self._body({"name": "identifier", "valueIdentifier": identifier}, self.SUBJECT)
        result = await setup.post("/fhir/Questionnaire/$populate", json=by_identifier)
        assert _parameter(result.json(), "response")["questionnaire"] == f"{WORKSHEET_URL}|1.0.0"
        inline = self._body({"name": "questionnaire", "resource": worksheet(version="3.0.0")}, self.SUBJECT)
        result = await setup.post("/fhir/Questionnaire/$populate", json=inline)
        assert _parameter(result.json(), "response")["questionnaire"] == f"{WORKSHEET_URL}|3.0.0"

    async def test_the_user_context_is_the_author(self, setup: httpx.AsyncClient) -> None:
        await _put(setup, practitioner(id="t1"))
        user = {
            "name": "context",
            "part": [
                {"name": "name", "valueString": "user"},
                {"name": "content", "valueReference": {"reference": "Practitioner/t1"}},
            ],
        }
        result = await setup.post(
            "/fhir/Questionnaire/mood-check-1/$populate", json=self._body(self.SUBJECT, user)
        )
        assert _parameter(result.json(), "response")["author"] == {"reference": "Practitioner/t1"}

    @pytest.mark.parametrize(
        ("url", "parameters", "status", "expression"),
        [
            ("/fhir/Questionnaire/mood-check-1/$populate", [], 400, "Parameters.parameter"),
            (
                "/fhir/Questionnaire/mood-check-1/$populate",
                [{"name": "subject", "valueReference": {"reference": "Patient/ghost"}}],
                422,
                "Parameters.parameter[0].valueReference",
            ),
            ("/fhir/Questionnaire/ghost/$populate", [SUBJECT], 404, "Questionnaire"),
            (
                "/fhir/Questionnaire/$populate",
                [{"name": "canonical", "valueCanonical": "http://example.org/nope"}, SUBJECT],
                422,
                "Parameters.parameter[0].valueCanonical",
            ),
            ("/fhir/Questionnaire/$populate", [SUBJECT], 400, "Parameters.parameter"),
            (
                "/fhir/Questionnaire/$populate",
                [
                    {"name": "canonical", "valueCanonical": PHQ9},
                    {"name": "questionnaireRef", "valueReference": {}},
                    SUBJECT,
                ],
                400,
                "Parameters.parameter[1]",
            ),
        ],
    )
    async def test_errors(
        self,
        setup: httpx.AsyncClient,
        url: str,
        parameters: list[dict[str, Any]],
        status: int,
        expression: str,
    ) -> None:
        result = await _stays_unchanged(setup, setup.post(url, json=self._body(*parameters)))
        assert result.status_code == status, result.text
        assert result.json()["issue"][0]["expression"] == [expression]

    async def test_the_body_must_be_parameters(self, setup: httpx.AsyncClient) -> None:
        result = await setup.post("/fhir/Questionnaire/$populate", json=patient())
        assert result.status_code == 400


class TestExtract:
    async def test_instance_level_matches_what_completion_stored(self, setup: httpx.AsyncClient) -> None:
        created = (await setup.post(QR, json=phq9_response((3,) * 9), headers=FHIR_JSON)).json()
        result = await _stays_unchanged(setup, setup.get(f"{QR}/{created['id']}/$extract"))
        assert result.status_code == 200, result.text
        bundle = _parameter(result.json(), "return")
        assert bundle["type"] == "transaction"
        [entry] = bundle["entry"]
        observation = entry["resource"]
        assert observation["code"]["coding"][0]["code"] == "44261-6"
        assert observation["valueInteger"] == 27
        assert entry["request"] == {"method": "PUT", "url": f"Observation/{observation['id']}"}
        stored = (await setup.get(f"/fhir/Observation/{observation['id']}")).json()
        assert stored["valueInteger"] == 27
        assert (await setup.post(f"{QR}/{created['id']}/$extract")).json() == result.json()

    async def test_type_level_from_the_body(self, setup: httpx.AsyncClient) -> None:
        body = {
            "resourceType": "Parameters",
            "parameter": [{"name": "questionnaire-response", "resource": phq9_response()}],
        }
        result = await _stays_unchanged(setup, setup.post(f"{QR}/$extract", json=body, headers=FHIR_JSON))
        assert result.status_code == 200, result.text
        [entry] = _parameter(result.json(), "return")["entry"]
        assert entry["request"] == {"method": "POST", "url": "Observation"}
        assert entry["fullUrl"].startswith("urn:uuid:")
        assert entry["resource"]["valueInteger"] == 10

    async def test_an_unfinished_response_yields_nothing(self, setup: httpx.AsyncClient) -> None:
        result = await setup.post(
            f"{QR}/$extract", json=phq9_response(status="in-progress"), headers=FHIR_JSON
        )
        assert result.status_code == 200
        assert "entry" not in _parameter(result.json(), "return")
        assert _issues(_parameter(result.json(), "issues"), "warning") == [
            ("QuestionnaireResponse.status", "incomplete")
        ]

    async def test_a_worksheet_without_scores_yields_nothing(self, setup: httpx.AsyncClient) -> None:
        created = (await setup.post(QR, json=worksheet_response(), headers=FHIR_JSON)).json()
        result = await setup.get(f"{QR}/{created['id']}/$extract")
        assert "entry" not in _parameter(result.json(), "return")

    async def test_an_invalid_response_is_422(self, setup: httpx.AsyncClient) -> None:
        sent = phq9_response()
        del sent["item"][0]
        result = await _stays_unchanged(setup, setup.post(f"{QR}/$extract", json=sent, headers=FHIR_JSON))
        assert result.status_code == 422
        assert _issues(result.json()) == [("QuestionnaireResponse", "required")]

    async def test_instance_errors(self, setup: httpx.AsyncClient) -> None:
        assert (await setup.get(f"{QR}/ghost/$extract")).status_code == 404
        plain = {"resourceType": "QuestionnaireResponse", "status": "completed"}
        created = (await setup.post(QR, json=plain, headers=FHIR_JSON)).json()
        result = await setup.get(f"{QR}/{created['id']}/$extract")
        assert result.status_code == 422
        assert _issues(result.json()) == [("QuestionnaireResponse.questionnaire", "required")]
        await setup.delete(f"{QR}/{created['id']}")
        assert (await setup.get(f"{QR}/{created['id']}/$extract")).status_code == 410


class TestCapabilityStatement:
    async def test_lists_each_operation_with_its_definition(self, client: httpx.AsyncClient) -> None:
        rest = (await client.get("/fhir/metadata")).json()["rest"][0]
        operations = {
            r["type"]: {o["name"]: o["definition"] for o in r.get("operation", [])} for r in rest["resource"]
        }
        # The audit trail is written by the server alone: nothing to validate.
        assert operations.pop("AuditEvent") == {}
        assert all(
            ops.get("validate") == "http://hl7.org/fhir/OperationDefinition/Resource-validate"
            for ops in operations.values()
        )
        assert operations["Questionnaire"]["populate"] == (
            "http://hl7.org/fhir/uv/sdc/OperationDefinition/Questionnaire-populate"
        )
        assert operations["QuestionnaireResponse"]["extract"] == (
            "http://hl7.org/fhir/uv/sdc/OperationDefinition/QuestionnaireResponse-extract"
        )
        assert "Observation" in operations
