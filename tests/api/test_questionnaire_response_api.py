"""A portal POSTs (and PUTs) QuestionnaireResponses; wrong ones are refused and nothing wrong is stored.

Spec clauses under test, over HTTP on PostgreSQL:
- https://hl7.org/fhir/R4/questionnaireresponse.html#link: `questionnaire` (url or url|version) resolves to a
  Questionnaire on this server, else 422 at `QuestionnaireResponse.questionnaire`; the answers follow it
  (the pure rules have their own unit tests; here: the wiring, the lookup of forms and ValueSets).
- https://hl7.org/fhir/R4/questionnaireresponse-definitions.html: `subject` a Patient on this server,
  `basedOn` a CarePlan of the same patient, `author` a Patient, Practitioner, PractitionerRole or
  RelatedPerson.
- https://hl7.org/fhir/R4/codesystem-questionnaire-answers-status.html: in-progress -> completed -> amended,
  or entered-in-error; a completed response changes only by being amended; every version stays in history.
- http://hl7.org/fhir/uv/sdc/extraction.html#observation-based-extraction: completing a PHQ-9 stores its
  total score as an Observation (LOINC 44261-6) derived from the response, in the same transaction.
- Every refusal is a 422 OperationOutcome with one issue per problem, each naming its node in `expression`.
"""

from typing import Any

import httpx
import pytest

from mappings.content import load_content
from tests.factories import (
    FHIR_JSON,
    WORKSHEET_SYSTEM,
    WORKSHEET_URL,
    care_plan,
    closeness_code_system,
    closeness_value_set,
    patient,
    phq9_response,
    practitioner,
    questionnaire_response,
    worksheet,
    worksheet_response,
)

QR = "/fhir/QuestionnaireResponse"
PHQ9_TOTAL = "44261-6"


async def _put(client: httpx.AsyncClient, resource: dict[str, Any]) -> dict[str, Any]:
    response = await client.put(
        f"/fhir/{resource['resourceType']}/{resource['id']}", json=resource, headers=FHIR_JSON
    )
    assert response.status_code in (200, 201), response.text
    body: dict[str, Any] = response.json()
    return body


async def _versions(client: httpx.AsyncClient, resource_type: str = "QuestionnaireResponse") -> int:
    bundle = (await client.get(f"/fhir/{resource_type}/_history", params={"_count": 500})).json()
    return len(bundle.get("entry", []))


def _problems(response: httpx.Response) -> list[tuple[str, str]]:
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome", outcome
    return [
        (issue["expression"][0], issue["code"]) for issue in outcome["issue"] if issue["severity"] == "error"
    ]


async def _refused(client: httpx.AsyncClient, resource: dict[str, Any]) -> list[tuple[str, str]]:
    before = await _versions(client)
    response = await client.post(QR, json=resource, headers=FHIR_JSON)
    assert response.status_code == 422, response.text
    assert await _versions(client) == before, "a refused response was stored"
    return _problems(response)


async def _created(client: httpx.AsyncClient, resource: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(QR, json=resource, headers=FHIR_JSON)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture
async def setup(client: httpx.AsyncClient) -> httpx.AsyncClient:
    """Patient p1 and p2, the test worksheet with its ValueSet and CodeSystem."""
    await _put(client, patient(id="p1"))
    await _put(client, patient(id="p2", family="Okoye"))
    await _put(client, closeness_code_system())
    await _put(client, closeness_value_set())
    await _put(client, worksheet())
    return client


@pytest.fixture
async def phq9(setup: httpx.AsyncClient) -> httpx.AsyncClient:
    form = next(r for r in load_content() if r["resourceType"] == "Questionnaire" and r["id"] == "phq-9")
    await _put(setup, form)
    return setup


class TestQuestionnaireLookup:
    async def test_a_valid_response_is_stored(self, setup: httpx.AsyncClient) -> None:
        body = await _created(setup, worksheet_response())
        assert body["meta"]["versionId"] == "1"

    async def test_unknown_questionnaire_is_422(self, setup: httpx.AsyncClient) -> None:
        sent = worksheet_response(questionnaire="http://example.org/fhir/ipt/Questionnaire/nope|1.0.0")
        problems = await _refused(setup, sent)
        assert problems == [("QuestionnaireResponse.questionnaire", "not-found")]

    async def test_a_canonical_no_database_could_hold_is_400(self, setup: httpx.AsyncClient) -> None:
        # A NUL is refused where the body is read, before the questionnaire is looked for.
        sent = worksheet_response(questionnaire=f"{WORKSHEET_URL}\u0000|1.0.0")
        response = await setup.post("/fhir/QuestionnaireResponse", json=sent)
        assert response.status_code == 400, response.text
        assert response.json()["issue"][0]["expression"] == ["QuestionnaireResponse.questionnaire"]

    async def test_unknown_version_is_422(self, setup: httpx.AsyncClient) -> None:
        problems = await _refused(setup, worksheet_response(questionnaire=f"{WORKSHEET_URL}|9.9.9"))
        assert ("QuestionnaireResponse.questionnaire", "not-found") in problems

    async def test_url_without_version_takes_the_highest_version(self, setup: httpx.AsyncClient) -> None:
        newer = worksheet(id="mood-check-2", version="2.0.0")
        newer["item"][1]["extension"][1]["valueInteger"] = 5
        await _put(setup, newer)
        assert await _refused(setup, worksheet_response(questionnaire=WORKSHEET_URL, mood=7)) == [
            ("QuestionnaireResponse.item[0].answer[0]", "value")
        ]
        await _created(setup, worksheet_response(questionnaire=f"{WORKSHEET_URL}|1.0.0", mood=7))

    async def test_relative_reference_to_the_questionnaire(self, setup: httpx.AsyncClient) -> None:
        await _created(setup, worksheet_response(questionnaire="Questionnaire/mood-check-1"))

    async def test_deleted_questionnaire_no_longer_resolves(self, setup: httpx.AsyncClient) -> None:
        assert (await setup.delete("/fhir/Questionnaire/mood-check-1")).status_code == 204
        assert await _refused(setup, worksheet_response()) == [
            ("QuestionnaireResponse.questionnaire", "not-found")
        ]

    async def test_without_questionnaire_nothing_is_checked_against_a_form(
        self, setup: httpx.AsyncClient
    ) -> None:
        await _created(setup, questionnaire_response())
        await _created(setup, questionnaire_response(subject={"reference": "Patient/p1"}))


class TestAnswers:
    async def test_every_problem_is_one_issue_at_its_node(self, setup: httpx.AsyncClient) -> None:
        sent = worksheet_response(mood=-1)
        people = sent["item"][1]["item"]
        people[0]["answer"] = [{"valueInteger": 3}]
        people[1]["answer"][0]["valueCoding"]["code"] = "enemy"
        sent["item"].append({"linkId": "good", "answer": [{"valueString": "walk"}]})
        response = await setup.post(QR, json=sent, headers=FHIR_JSON)
        assert response.status_code == 422
        assert _problems(response) == [
            ("QuestionnaireResponse.item[0].answer[0]", "value"),
            ("QuestionnaireResponse.item[1].item[0].answer[0]", "value"),
            ("QuestionnaireResponse.item[1].item[1].answer[0]", "code-invalid"),
            ("QuestionnaireResponse.item[2]", "business-rule"),
        ]
        diagnostics = " ".join(issue["diagnostics"] for issue in response.json()["issue"])
        assert "How was your mood (0-10)?" in diagnostics
        assert "at least 0" in diagnostics
        assert await _versions(setup) == 0

    async def test_the_value_set_comes_from_the_server(self, setup: httpx.AsyncClient) -> None:
        sent = worksheet_response()
        sent["item"][1]["item"][1]["answer"][0]["valueCoding"] = {
            "system": WORKSHEET_SYSTEM,
            "code": "distant",
        }
        await _created(setup, sent)
        sent["item"][1]["item"][1]["answer"][0]["valueCoding"]["code"] = "far"
        assert await _refused(setup, sent) == [
            ("QuestionnaireResponse.item[1].item[1].answer[0]", "code-invalid")
        ]

    async def test_missing_required_answer_refuses_a_completed_response(
        self, setup: httpx.AsyncClient
    ) -> None:
        sent = worksheet_response()
        del sent["item"][0]
        assert await _refused(setup, sent) == [("QuestionnaireResponse", "required")]

    async def test_in_progress_may_be_incomplete(self, setup: httpx.AsyncClient) -> None:
        sent = worksheet_response(status="in-progress", mood=42)
        del sent["item"][1]
        body = await _created(setup, sent)
        assert body["status"] == "in-progress"

    async def test_in_progress_still_needs_the_right_types(self, setup: httpx.AsyncClient) -> None:
        sent = worksheet_response(status="in-progress")
        sent["item"][0]["answer"] = [{"valueString": "fine"}]
        assert await _refused(setup, sent) == [("QuestionnaireResponse.item[0].answer[0]", "value")]

    async def test_unknown_link_id_is_refused(self, setup: httpx.AsyncClient) -> None:
        sent = worksheet_response(status="in-progress")
        sent["item"].append({"linkId": "nonsense", "answer": [{"valueString": "x"}]})
        assert await _refused(setup, sent) == [("QuestionnaireResponse.item[2]", "not-found")]

    async def test_update_is_validated_too(self, setup: httpx.AsyncClient) -> None:
        created = await _created(setup, worksheet_response(status="in-progress"))
        changed = {**created, "item": [{"linkId": "mood", "answer": [{"valueBoolean": True}]}]}
        response = await setup.put(f"{QR}/{created['id']}", json=changed, headers=FHIR_JSON)
        assert response.status_code == 422
        assert _problems(response) == [("QuestionnaireResponse.item[0].answer[0]", "value")]
        assert (await setup.get(f"{QR}/{created['id']}")).json() == created


class TestReferences:
    async def test_subject_is_required_when_a_form_is_cited(self, setup: httpx.AsyncClient) -> None:
        assert await _refused(setup, worksheet_response(subject=None)) == [
            ("QuestionnaireResponse.subject", "required")
        ]

    @pytest.mark.parametrize(
        ("subject", "code"),
        [
            ("Patient/nobody", "not-found"),
            ("Practitioner/p1", "invalid"),
            ("http://elsewhere.example/fhir/Patient/p1", "invalid"),
        ],
    )
    async def test_subject_must_be_a_patient_here(
        self, setup: httpx.AsyncClient, subject: str, code: str
    ) -> None:
        assert await _refused(setup, worksheet_response(subject=subject)) == [
            ("QuestionnaireResponse.subject", code)
        ]

    async def test_deleted_patient_is_refused(self, setup: httpx.AsyncClient) -> None:
        await setup.delete("/fhir/Patient/p2")
        problems = await _refused(setup, worksheet_response(subject="Patient/p2"))
        assert problems == [("QuestionnaireResponse.subject", "not-found")]

    @pytest.mark.parametrize("patient_first", [True, False])
    async def test_subject_created_in_the_same_transaction(
        self, setup: httpx.AsyncClient, patient_first: bool
    ) -> None:
        # The response's rules read its subject, so the Patient is written first whatever the entry order.
        entries = [
            {
                "fullUrl": "urn:uuid:0d4f6b3e-2c61-4a53-9d8e-6f1d2b7c9a10",
                "resource": patient(family="Mensah"),
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "resource": worksheet_response(subject="urn:uuid:0d4f6b3e-2c61-4a53-9d8e-6f1d2b7c9a10"),
                "request": {"method": "POST", "url": "QuestionnaireResponse"},
            },
        ]
        bundle = {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": entries[:: 1 if patient_first else -1],
        }
        answer = await setup.post("/fhir", json=bundle, headers=FHIR_JSON)
        assert answer.status_code == 200, answer.text
        by_type = {e["resource"]["resourceType"]: e["resource"] for e in answer.json()["entry"]}
        assert by_type["QuestionnaireResponse"]["subject"] == {
            "reference": f"Patient/{by_type['Patient']['id']}"
        }

    async def test_subject_is_checked_without_a_form(self, setup: httpx.AsyncClient) -> None:
        sent = questionnaire_response(subject={"reference": "Patient/nobody"})
        assert await _refused(setup, sent) == [("QuestionnaireResponse.subject", "not-found")]

    async def test_based_on_the_patients_own_care_plan(self, setup: httpx.AsyncClient) -> None:
        await _put(setup, care_plan(id="plan1", subject="Patient/p1"))
        await _created(setup, worksheet_response(basedOn=[{"reference": "CarePlan/plan1"}]))

    async def test_based_on_another_patients_care_plan_is_refused(self, setup: httpx.AsyncClient) -> None:
        await _put(setup, care_plan(id="plan2", subject="Patient/p2"))
        sent = worksheet_response(basedOn=[{"reference": "CarePlan/plan2"}])
        assert await _refused(setup, sent) == [("QuestionnaireResponse.basedOn[0]", "business-rule")]

    @pytest.mark.parametrize("reference", ["CarePlan/none", "ServiceRequest/sr1"])
    async def test_based_on_must_be_a_care_plan_here(self, setup: httpx.AsyncClient, reference: str) -> None:
        sent = worksheet_response(basedOn=[{"reference": reference}])
        problems = await _refused(setup, sent)
        assert [expression for expression, _ in problems] == ["QuestionnaireResponse.basedOn[0]"]

    @pytest.mark.parametrize(
        "author",
        [
            patient(id="a1"),
            practitioner(id="a1"),
            {"resourceType": "PractitionerRole", "id": "a1", "active": True},
            {"resourceType": "RelatedPerson", "id": "a1", "patient": {"reference": "Patient/p1"}},
        ],
    )
    async def test_allowed_authors(self, setup: httpx.AsyncClient, author: dict[str, Any]) -> None:
        await _put(setup, author)
        reference = f"{author['resourceType']}/a1"
        body = await _created(setup, worksheet_response(author={"reference": reference}))
        assert body["author"] == {"reference": reference}

    @pytest.mark.parametrize(
        ("author", "code"), [("CarePlan/plan1", "invalid"), ("Practitioner/ghost", "not-found")]
    )
    async def test_other_authors_are_refused(self, setup: httpx.AsyncClient, author: str, code: str) -> None:
        await _put(setup, care_plan(id="plan1"))
        sent = worksheet_response(author={"reference": author})
        assert await _refused(setup, sent) == [("QuestionnaireResponse.author", code)]

    async def test_all_reference_problems_come_together(self, setup: httpx.AsyncClient) -> None:
        sent = worksheet_response(
            subject="Patient/ghost",
            author={"reference": "Practitioner/ghost"},
            basedOn=[{"reference": "CarePlan/ghost"}],
        )
        problems = await _refused(setup, sent)
        assert [expression for expression, _ in problems] == [
            "QuestionnaireResponse.subject",
            "QuestionnaireResponse.basedOn[0]",
            "QuestionnaireResponse.author",
        ]


class TestLifecycle:
    async def _put_status(
        self, client: httpx.AsyncClient, current: dict[str, Any], status: str, **changes: Any
    ) -> httpx.Response:
        sent = {**current, "status": status, **changes}
        return await client.put(f"{QR}/{current['id']}", json=sent, headers=FHIR_JSON)

    async def test_in_progress_completed_amended_keeps_every_version(self, setup: httpx.AsyncClient) -> None:
        draft = await _created(setup, worksheet_response(status="in-progress", mood=3))
        done = await self._put_status(setup, draft, "completed")
        assert done.status_code == 200, done.text
        amended = await self._put_status(
            setup, done.json(), "amended", item=worksheet_response(mood=4)["item"]
        )
        assert amended.status_code == 200, amended.text
        history = (await setup.get(f"{QR}/{draft['id']}/_history")).json()
        assert [e["resource"]["status"] for e in history["entry"]] == ["amended", "completed", "in-progress"]

    @pytest.mark.parametrize("status", ["in-progress", "stopped", "completed"])
    async def test_a_completed_response_changes_only_by_amendment(
        self, setup: httpx.AsyncClient, status: str
    ) -> None:
        done = await _created(setup, worksheet_response(mood=3))
        response = await self._put_status(setup, done, status, item=worksheet_response(mood=4)["item"])
        assert response.status_code == 422
        assert _problems(response) == [("QuestionnaireResponse.status", "business-rule")]
        assert (await setup.get(f"{QR}/{done['id']}")).json() == done

    async def test_resending_a_completed_response_unchanged_is_not_a_change(
        self, setup: httpx.AsyncClient
    ) -> None:
        done = await _created(setup, worksheet_response())
        response = await self._put_status(setup, done, "completed")
        assert response.status_code == 200
        assert response.headers["etag"] == 'W/"1"'

    @pytest.mark.parametrize("status", ["amended", "entered-in-error"])
    async def test_a_new_response_cannot_start_finished_or_withdrawn(
        self, setup: httpx.AsyncClient, status: str
    ) -> None:
        assert await _refused(setup, worksheet_response(status=status)) == [
            ("QuestionnaireResponse.status", "business-rule")
        ]

    async def test_entered_in_error_is_final(self, setup: httpx.AsyncClient) -> None:
        done = await _created(setup, worksheet_response())
        withdrawn = await self._put_status(setup, done, "entered-in-error")
        assert withdrawn.status_code == 200
        again = await self._put_status(setup, withdrawn.json(), "amended")
        assert again.status_code == 422
        assert _problems(again) == [("QuestionnaireResponse.status", "business-rule")]

    async def test_a_finished_response_keeps_its_patient(self, setup: httpx.AsyncClient) -> None:
        done = await _created(setup, worksheet_response())
        response = await self._put_status(setup, done, "amended", subject={"reference": "Patient/p2"})
        assert response.status_code == 422
        assert _problems(response) == [("QuestionnaireResponse.subject", "business-rule")]

    async def test_put_creating_a_response_is_judged_as_a_create(self, setup: httpx.AsyncClient) -> None:
        sent = worksheet_response(id="chosen", status="amended")
        response = await setup.put(f"{QR}/chosen", json=sent, headers=FHIR_JSON)
        assert response.status_code == 422
        created = await setup.put(f"{QR}/chosen", json={**sent, "status": "completed"}, headers=FHIR_JSON)
        assert created.status_code == 201


class TestPhq9Extraction:
    async def _observations(self, client: httpx.AsyncClient) -> list[dict[str, Any]]:
        bundle = (await client.get("/fhir/Observation/_history", params={"_count": 500})).json()
        latest: dict[str, dict[str, Any]] = {}
        for entry in reversed(bundle.get("entry", [])):
            latest[entry["resource"]["id"]] = entry["resource"]
        return list(latest.values())

    async def test_completion_stores_the_total_score(self, phq9: httpx.AsyncClient) -> None:
        response = await _created(phq9, phq9_response((2, 2, 1, 1, 0, 0, 3, 1, 0)))
        [observation] = await self._observations(phq9)
        assert observation["code"]["coding"][0] == {
            "system": "http://loinc.org",
            "code": PHQ9_TOTAL,
            "display": "Patient Health Questionnaire 9 item (PHQ-9) total score [Reported]",
        }
        assert observation["valueInteger"] == 10
        assert observation["status"] == "final"
        assert observation["subject"] == {"reference": "Patient/p1"}
        assert observation["derivedFrom"] == [{"reference": f"QuestionnaireResponse/{response['id']}"}]
        assert observation["effectiveDateTime"] == "2024-05-31T10:00:00Z"
        read = await phq9.get(f"/fhir/Observation/{observation['id']}")
        assert read.status_code == 200

    async def test_the_total_is_computed_not_copied(self, phq9: httpx.AsyncClient) -> None:
        sent = phq9_response((1,) * 9)
        sent["item"].append({"linkId": "phq9-total", "answer": [{"valueInteger": 27}]})
        await _created(phq9, sent)
        [observation] = await self._observations(phq9)
        assert observation["valueInteger"] == 9

    async def test_an_in_progress_response_stores_none(self, phq9: httpx.AsyncClient) -> None:
        await _created(phq9, phq9_response(status="in-progress"))
        assert await self._observations(phq9) == []

    async def test_amending_updates_the_same_observation(self, phq9: httpx.AsyncClient) -> None:
        done = await _created(phq9, phq9_response((0,) * 9))
        [first] = await self._observations(phq9)
        assert first["valueInteger"] == 0
        amended = {**done, "status": "amended", "item": phq9_response((3,) * 9)["item"]}
        assert (await phq9.put(f"{QR}/{done['id']}", json=amended, headers=FHIR_JSON)).status_code == 200
        [second] = await self._observations(phq9)
        assert second["id"] == first["id"]
        assert (second["valueInteger"], second["status"], second["meta"]["versionId"]) == (27, "amended", "2")

    async def test_withdrawing_the_response_withdraws_the_score(self, phq9: httpx.AsyncClient) -> None:
        done = await _created(phq9, phq9_response())
        withdrawn = {**done, "status": "entered-in-error"}
        assert (await phq9.put(f"{QR}/{done['id']}", json=withdrawn, headers=FHIR_JSON)).status_code == 200
        [observation] = await self._observations(phq9)
        assert observation["status"] == "entered-in-error"

    async def test_a_refused_completion_stores_no_observation(self, phq9: httpx.AsyncClient) -> None:
        sent = phq9_response()
        del sent["item"][4]
        assert await _refused(phq9, sent) == [("QuestionnaireResponse", "required")]
        assert await self._observations(phq9) == []

    async def _transaction(
        self, client: httpx.AsyncClient, responses: list[dict[str, Any]]
    ) -> httpx.Response:
        entries = [
            {"resource": r, "request": {"method": "POST", "url": "QuestionnaireResponse"}} for r in responses
        ]
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
        return await client.post("/fhir", json=bundle, headers=FHIR_JSON)

    async def test_a_transaction_stores_the_total_of_each_response(self, phq9: httpx.AsyncClient) -> None:
        scores = [(0,) * 9, (1,) * 9, (2,) * 9, (3,) * 9]
        responses = [phq9_response(s) for s in scores] + [phq9_response(status="in-progress")]
        answer = await self._transaction(phq9, responses)
        assert answer.status_code == 200, answer.text
        ids = [e["response"]["location"].split("/")[1] for e in answer.json()["entry"]]
        totals = {
            o["derivedFrom"][0]["reference"]: (o["valueInteger"], o["status"], o["meta"]["versionId"])
            for o in await self._observations(phq9)
        }
        assert totals == {
            f"QuestionnaireResponse/{response_id}": (9 * s[0], "final", "1")
            for response_id, s in zip(ids, scores, strict=False)
        }

    async def test_a_failed_transaction_stores_no_total(self, phq9: httpx.AsyncClient) -> None:
        answer = await self._transaction(phq9, [phq9_response(), phq9_response(subject="Patient/nobody")])
        assert answer.status_code == 422, answer.text
        assert await self._observations(phq9) == []

    async def test_one_total_per_response_and_per_patient(self, phq9: httpx.AsyncClient) -> None:
        await _created(phq9, phq9_response((0,) * 9))
        await _created(phq9, phq9_response((1,) * 9))
        await _created(phq9, phq9_response((2,) * 9, subject="Patient/p2"))
        totals = sorted(
            (o["subject"]["reference"], o["valueInteger"]) for o in await self._observations(phq9)
        )
        assert totals == [("Patient/p1", 0), ("Patient/p1", 9), ("Patient/p2", 18)]
