"""The one write pipeline: its rules are installed when the application is built, every write path runs
them, and what a rule resolves is not read again by the hooks of the same write."""

from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from service.errors import Unprocessable
from service.interactions import writes
from service.interactions.content import load_ipt_content
from service.interactions.create import create_resource
from service.interactions.questionnaire_response import check_questionnaire_response, extract_on_completion
from service.interactions.references import check_references
from service.interactions.rules import standard_write_pipeline
from service.storage.repository import ResourceRepository
from tests.factories import FHIR_JSON, care_plan, patient, phq9_response


def test_the_standard_pipeline_names_every_rule_and_hook() -> None:
    pipeline = standard_write_pipeline()
    for resource_type in ("CarePlan", "Goal", "Patient", "Questionnaire", "QuestionnaireResponse"):
        assert check_references in pipeline.rules[resource_type]
    assert "AuditEvent" not in pipeline.rules  # an audit record may name what no longer exists
    assert pipeline.rules["QuestionnaireResponse"] == [check_questionnaire_response, check_references]
    assert pipeline.hooks == {"QuestionnaireResponse": [extract_on_completion]}


@pytest.fixture
def no_pipeline() -> Iterator[None]:
    installed = writes.write_pipeline()
    writes._installed = None
    yield
    writes.install_write_pipeline(installed)


async def test_a_write_without_an_installed_pipeline_fails_instead_of_skipping_its_rules(
    engine: AsyncEngine, no_pipeline: None
) -> None:
    with pytest.raises(RuntimeError, match="no write pipeline"):
        await create_resource(engine, "CarePlan", care_plan(subject="Patient/nobody"))


async def test_content_loading_passes_the_rules(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    worksheet = {
        "resourceType": "Questionnaire",
        "id": "ignored",
        "url": "http://example.org/fhir/ipt/Questionnaire/with-context",
        "version": "1.0.0",
        "status": "active",
        "useContext": [
            {
                "code": {
                    "system": "http://terminology.hl7.org/CodeSystem/usage-context-type",
                    "code": "user",
                },
                "valueReference": {"reference": "Practitioner/nobody"},
            }
        ],
    }
    with pytest.raises(Unprocessable, match="Practitioner/nobody"):
        await load_ipt_content(engine, [worksheet])


async def test_a_response_reads_its_questionnaire_once(
    client: httpx.AsyncClient, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    await load_ipt_content(engine)
    assert (await client.put("/fhir/Patient/p1", json=patient(id="p1"), headers=FHIR_JSON)).status_code == 201
    lookups: list[str] = []
    find = ResourceRepository._find_by_canonical

    async def counting(self: ResourceRepository, resource_type: str, canonical: str) -> object:
        lookups.append(canonical)
        return await find(self, resource_type, canonical)

    monkeypatch.setattr(ResourceRepository, "_find_by_canonical", counting)
    # A completed PHQ-9: the rules check it against its Questionnaire, the hook extracts its total score.
    response = await client.post("/fhir/QuestionnaireResponse", json=phq9_response(), headers=FHIR_JSON)
    assert response.status_code == 201, response.text
    assert lookups.count("http://example.org/fhir/ipt/Questionnaire/phq-9|1.0.0") == 1
    observations = (await client.get("/fhir/Observation", params={"subject": "Patient/p1"})).json()
    assert observations["total"] == 1


async def test_a_response_s_subject_is_read_once_and_still_guards_against_its_deletion(
    client: httpx.AsyncClient, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    await load_ipt_content(engine)
    assert (await client.put("/fhir/Patient/p1", json=patient(id="p1"), headers=FHIR_JSON)).status_code == 201
    subject_reads: list[str] = []
    checked: list[set[tuple[str, str]]] = []
    read_referenced = ResourceRepository.read_referenced
    existing = ResourceRepository.existing

    async def counting_reads(self: ResourceRepository, resource_type: str, resource_id: str) -> object:
        subject_reads.append(f"{resource_type}/{resource_id}")
        return await read_referenced(self, resource_type, resource_id)

    async def counting_checks(self: ResourceRepository, keys: object) -> set[tuple[str, str]]:
        found = await existing(self, keys)  # type: ignore[arg-type]
        checked.append(found)
        return found

    monkeypatch.setattr(ResourceRepository, "read_referenced", counting_reads)
    monkeypatch.setattr(ResourceRepository, "existing", counting_checks)
    statements: list[str] = []

    def note(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        statements.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", note)
    try:
        response = await client.post("/fhir/QuestionnaireResponse", json=phq9_response(), headers=FHIR_JSON)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", note)
    assert response.status_code == 201, response.text
    assert subject_reads == ["Patient/p1"]
    # The reference check found the subject among what the rule had read, and asked the database nothing.
    assert checked == [{("Patient", "p1")}]
    assert sum("unnest" in s and "FOR KEY SHARE" in s for s in statements) == 0
    # The one read of the subject locks it as the reference check did: a delete waits for the write.
    assert sum("FROM resources" in s and "FOR KEY SHARE" in s for s in statements) == 1


async def test_a_deleted_subject_is_still_refused(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    await load_ipt_content(engine)
    assert (await client.put("/fhir/Patient/p1", json=patient(id="p1"), headers=FHIR_JSON)).status_code == 201
    assert (await client.delete("/fhir/Patient/p1")).status_code == 204
    response = await client.post("/fhir/QuestionnaireResponse", json=phq9_response(), headers=FHIR_JSON)
    assert response.status_code == 422
    assert "Patient/p1 was deleted" in response.text
