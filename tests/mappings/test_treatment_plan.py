"""TreatmentPlan <-> FHIR transaction Bundle, on the sample plan (the golden fixture).

Checks the clauses of the mapping: document -> FHIR JSON text -> parsed -> every resource valid against the
R4B models -> document equal to the input; a conditional create (`ifNoneExist = identifier=system|value`) for
each person; every reference resolves to an entry fullUrl; security labels on the clinical resources; PUT for
resources that carry an id; and reading back stored resources keyed by `Type/id`
(https://hl7.org/fhir/R4/http.html#transaction, https://hl7.org/fhir/R4/http.html#ccreate).
"""

from __future__ import annotations

import copy
import functools
import itertools
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from mappings.careplan import MappingError, from_fhir, from_fhir_bundle, to_fhir_transaction
from mappings.codes import (
    PHASE_SYSTEM,
    PROBLEM_AREA_SYSTEM,
    QUESTIONNAIRE_BASE,
    TECHNIQUE_SYSTEM,
    V3_ACT_CODE,
    V3_CONFIDENTIALITY,
)
from mappings.content import load_content
from mappings.domain import TreatmentPlan
from mappings.extensions import (
    CARE_TEAM_ROLE_CODING,
    IPT_PLAN_DEFINITION,
    PHASE_DISPLAY,
    PROBLEM_AREA_DISPLAY,
    PROJECT_EXTENSIONS,
    TECHNIQUE_DISPLAY,
)
from mappings.r4 import model_class

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "mappings" / "samples" / "sample_plan.json"
GOLDEN_BUNDLE = ROOT / "mappings" / "samples" / "sample_plan.bundle.json"
PEOPLE = {"Patient", "Practitioner", "RelatedPerson"}
CLINICAL = {"CarePlan", "Goal", "Condition", "CareTeam"}


@functools.cache
def _content() -> list[dict[str, Any]]:
    return load_content()


def sample_plan() -> TreatmentPlan:
    return TreatmentPlan.model_validate_json(SAMPLE.read_text(encoding="utf-8"))


def counting_uuids() -> Callable[[], UUID]:
    counter = itertools.count(1)
    return lambda: UUID(int=next(counter))


def references(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "reference" and isinstance(item, str):
                yield item
            else:
                yield from references(item)
    elif isinstance(value, list):
        for item in value:
            yield from references(item)


def through_json(bundle: dict[str, Any]) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(json.dumps(bundle, ensure_ascii=False))
    return parsed


def validate_resources(bundle: dict[str, Any]) -> None:
    model_class("Bundle").model_validate(bundle)
    for entry in bundle["entry"]:
        resource = entry["resource"]
        model_class(resource["resourceType"]).model_validate(resource)


class FakeTransactionServer:
    """Just enough of a FHIR server's transaction processing to read a plan back as an EHR would.

    Assigns ids, honours `ifNoneExist` (an existing match is reused, not created again) and `PUT Type/id`,
    and rewrites `urn:uuid:` references to `Type/id`.
    """

    def __init__(self) -> None:
        self.store: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1)

    def process(self, bundle: dict[str, Any]) -> dict[str, str]:
        located: dict[str, str] = {}
        for entry in bundle["entry"]:
            resource, request = entry["resource"], entry["request"]
            kind = resource["resourceType"]
            if request["method"] == "PUT":
                located[entry["fullUrl"]] = request["url"]
                continue
            match = self._match(kind, request.get("ifNoneExist"))
            located[entry["fullUrl"]] = match or f"{kind}/s{next(self._ids)}"
            if match:
                entry["_matched"] = True
        for entry in bundle["entry"]:
            if entry.pop("_matched", False):
                continue
            key = located[entry["fullUrl"]]
            stored = json.loads(json.dumps(entry["resource"]))
            stored["id"] = key.split("/")[1]
            self.store[key] = self._rewrite(stored, located)
        return located

    def _match(self, kind: str, criteria: str | None) -> str | None:
        if criteria is None:
            return None
        system, value = criteria.removeprefix("identifier=").split("|")
        for key, resource in self.store.items():
            if (
                resource["resourceType"] == kind
                and {"system": system, "value": value} in resource["identifier"]
            ):
                return key
        return None

    def _rewrite(self, value: Any, located: dict[str, str]) -> Any:
        if isinstance(value, dict):
            return {
                k: located.get(v, v) if k == "reference" else self._rewrite(v, located)
                for k, v in value.items()
            }
        if isinstance(value, list):
            return [self._rewrite(v, located) for v in value]
        return value


class TestSamplePlan:
    def test_round_trip_through_json_text_is_lossless(self) -> None:
        plan = sample_plan()
        bundle = through_json(to_fhir_transaction(plan))
        validate_resources(bundle)
        assert from_fhir_bundle(bundle) == plan

    def test_the_bundle_matches_the_golden_file(self) -> None:
        bundle = to_fhir_transaction(sample_plan(), new_uuid=counting_uuids())
        text = json.dumps(bundle, indent=2, ensure_ascii=False) + "\n"
        if os.environ.get("UPDATE_GOLDEN") == "1":
            GOLDEN_BUNDLE.write_text(text, encoding="utf-8")
        assert GOLDEN_BUNDLE.read_text(encoding="utf-8") == text, (
            "run with UPDATE_GOLDEN=1 after a deliberate change"
        )

    def test_sample_uses_every_project_extension(self) -> None:
        text = json.dumps(to_fhir_transaction(sample_plan()))
        assert [url for url in PROJECT_EXTENSIONS if url not in text] == []

    def test_json_schema_carries_the_sample_as_example(self) -> None:
        schema = TreatmentPlan.model_json_schema()
        assert schema["examples"] == [json.loads(SAMPLE.read_text(encoding="utf-8"))]
        TreatmentPlan.model_validate(schema["examples"][0])


class TestTransactionBundle:
    @pytest.fixture
    def bundle(self) -> dict[str, Any]:
        return to_fhir_transaction(sample_plan())

    def test_is_a_transaction_with_urn_uuid_full_urls(self, bundle: dict[str, Any]) -> None:
        assert bundle["resourceType"] == "Bundle"
        assert bundle["type"] == "transaction"
        full_urls = [entry["fullUrl"] for entry in bundle["entry"]]
        assert all(url.startswith("urn:uuid:") for url in full_urls)
        assert len(set(full_urls)) == len(full_urls)

    def test_every_reference_resolves_to_an_entry(self, bundle: dict[str, Any]) -> None:
        full_urls = {entry["fullUrl"] for entry in bundle["entry"]}
        assert set(references(bundle)) <= full_urls

    def test_each_person_is_a_conditional_create_on_its_first_identifier(
        self, bundle: dict[str, Any]
    ) -> None:
        people = [entry for entry in bundle["entry"] if entry["resource"]["resourceType"] in PEOPLE]
        assert [e["resource"]["resourceType"] for e in people] == ["Patient", "Practitioner", "Practitioner"]
        for entry in people:
            first = entry["resource"]["identifier"][0]
            assert entry["request"] == {
                "method": "POST",
                "url": entry["resource"]["resourceType"],
                "ifNoneExist": f"identifier={first['system']}|{first['value']}",
            }

    def test_clinical_resources_carry_the_security_labels(self, bundle: dict[str, Any]) -> None:
        for entry in bundle["entry"]:
            resource = entry["resource"]
            labels = {(s["system"], s["code"]) for s in resource.get("meta", {}).get("security", [])}
            if resource["resourceType"] in CLINICAL:
                assert labels == {(V3_CONFIDENTIALITY, "R"), (V3_ACT_CODE, "PSY")}, resource["resourceType"]

    def test_careplan_shape(self, bundle: dict[str, Any]) -> None:
        careplan = bundle["entry"][-1]["resource"]
        assert careplan["instantiatesCanonical"] == [IPT_PLAN_DEFINITION]
        assert careplan["category"][0]["coding"][0]["code"] == "718347000"
        assert [c["coding"][0]["code"] for c in careplan["category"][1:]] == [
            "grief",
            "interpersonal-deficits",
            "role-dispute",
        ]
        course = careplan["activity"][0]["detail"]
        assert course["scheduledTiming"]["repeat"] == {
            "count": 12,
            "countMax": 16,
            "duration": 50,
            "durationUnit": "min",
            "frequency": 1,
            "period": 1,
            "periodUnit": "wk",
        }
        worksheets = [c for a in careplan["activity"] for c in a["detail"].get("instantiatesCanonical", [])]
        assert "http://example.org/fhir/ipt/Questionnaire/interpersonal-inventory" in worksheets
        assert len(careplan["goal"]) == 4 + 7

    def test_objectives_are_milestones_of_their_goal(self, bundle: dict[str, Any]) -> None:
        goals = {
            e["fullUrl"]: e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Goal"
        }
        first = next(iter(goals.values()))
        targets = [ext["extension"][1]["valueReference"]["reference"] for ext in first["extension"]]
        assert [goals[t]["description"]["text"] for t in targets] == [
            o.description for o in sample_plan().goals[0].objectives
        ]

    def test_resources_with_an_id_are_updated_in_place_and_people_still_matched(self) -> None:
        plan = sample_plan().model_copy(deep=True)
        plan.id = "plan-1"
        plan.goals[0].id = "goal-1"
        plan.client.id = "pat-1"
        entries = to_fhir_transaction(plan)["entry"]
        requests = {(e["resource"]["resourceType"], e["resource"].get("id")): e["request"] for e in entries}
        assert requests[("CarePlan", "plan-1")] == {"method": "PUT", "url": "CarePlan/plan-1"}
        assert requests[("Goal", "goal-1")] == {"method": "PUT", "url": "Goal/goal-1"}
        assert requests[("Patient", "pat-1")]["method"] == "POST"
        assert "ifNoneExist" in requests[("Patient", "pat-1")]

    def test_identifier_search_is_escaped(self) -> None:
        data = json.loads(SAMPLE.read_text(encoding="utf-8"))
        data["client"]["identifiers"] = [{"system": "urn:oid:1.2.3", "value": "A|B,C&D 7"}]
        entry = to_fhir_transaction(TreatmentPlan.model_validate(data))["entry"][0]
        assert entry["request"]["ifNoneExist"] == "identifier=urn:oid:1.2.3|A%5C%7CB%5C%2CC%26D%207"


class TestReadBackFromServer:
    def test_stored_resources_keyed_by_type_and_id_read_back_with_their_ids(self) -> None:
        server = FakeTransactionServer()
        bundle = to_fhir_transaction(sample_plan())
        located = server.process(bundle)
        careplan_key = located[bundle["entry"][-1]["fullUrl"]]
        plan = from_fhir(server.store[careplan_key], server.store)
        assert plan.id == careplan_key.split("/")[1]
        assert plan.client.id is not None
        assert all(goal.id is not None for goal in plan.goals)
        assert _without_ids(plan) == _without_ids(sample_plan())
        # A plan read back and posted again updates in place and reads back unchanged.
        again = to_fhir_transaction(plan)
        server.process(again)
        assert from_fhir(server.store[careplan_key], server.store) == plan

    def test_posting_the_same_therapist_twice_creates_one_practitioner(self) -> None:
        server = FakeTransactionServer()
        server.process(to_fhir_transaction(sample_plan()))
        server.process(to_fhir_transaction(sample_plan()))
        practitioners = [r for r in server.store.values() if r["resourceType"] == "Practitioner"]
        careplans = [r for r in server.store.values() if r["resourceType"] == "CarePlan"]
        assert len(practitioners) == 2  # the therapist and the supervisor, each once
        assert len(careplans) == 2
        assert careplans[0]["author"] == careplans[1]["author"]

    def _stored(self) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
        server = FakeTransactionServer()
        bundle = to_fhir_transaction(sample_plan())
        located = server.process(bundle)
        server.store["Patient/other"] = {"resourceType": "Patient", "id": "other", "name": [{"text": "B"}]}
        return server.store, copy.deepcopy(server.store[located[bundle["entry"][-1]["fullUrl"]]])

    def test_a_versioned_subject_reads_its_resource(self) -> None:
        store, careplan = self._stored()
        careplan["subject"]["reference"] += "/_history/1"

        assert from_fhir(careplan, store).client.name.text == sample_plan().client.name.text

    @pytest.mark.parametrize("suffix", ["/Patient/other", "/other", "/"])
    def test_a_malformed_subject_is_refused_not_read_as_either_patient(self, suffix: str) -> None:
        store, careplan = self._stored()
        careplan["subject"]["reference"] += suffix

        with pytest.raises(MappingError, match=r"^CarePlan\.subject: .* is not a valid reference"):
            from_fhir(careplan, store)

    def test_an_absolute_subject_is_not_read_as_the_stored_resource_it_ends_in(self) -> None:
        store, careplan = self._stored()
        careplan["subject"]["reference"] = "https://elsewhere.example/fhir/Patient/other"

        with pytest.raises(MappingError, match=r"^CarePlan\.subject: .* not among the resolved resources"):
            from_fhir(careplan, store)


def _without_ids(plan: TreatmentPlan) -> dict[str, Any]:
    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k != "id"}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    result: dict[str, Any] = strip(plan.model_dump(mode="json"))
    return result


class TestFromFhirErrors:
    @pytest.fixture
    def bundle(self) -> dict[str, Any]:
        return to_fhir_transaction(sample_plan())

    def careplan(self, bundle: dict[str, Any]) -> dict[str, Any]:
        resource: dict[str, Any] = bundle["entry"][-1]["resource"]
        return resource

    def test_an_unresolved_reference_names_the_element(self, bundle: dict[str, Any]) -> None:
        broken = copy.deepcopy(bundle)
        broken["entry"] = [e for e in broken["entry"] if e["resource"]["resourceType"] != "Condition"]
        with pytest.raises(MappingError, match=r"CarePlan\.addresses\[0\]"):
            from_fhir_bundle(broken)

    def test_a_foreign_activity_is_refused_not_dropped(self, bundle: dict[str, Any]) -> None:
        self.careplan(bundle)["activity"].append({"detail": {"status": "not-started", "description": "x"}})
        with pytest.raises(MappingError, match=r"CarePlan\.activity\[\d+\]: not an IPT plan activity"):
            from_fhir_bundle(bundle)

    def test_an_unknown_worksheet_canonical_is_refused(self, bundle: dict[str, Any]) -> None:
        activity = next(
            a for a in self.careplan(bundle)["activity"] if "instantiatesCanonical" in a["detail"]
        )
        activity["detail"]["instantiatesCanonical"] = ["http://elsewhere.example/Questionnaire/x"]
        with pytest.raises(MappingError, match="not an IPT worksheet"):
            from_fhir_bundle(bundle)

    def test_a_resource_of_the_wrong_type_is_refused(self, bundle: dict[str, Any]) -> None:
        careplan = self.careplan(bundle)
        careplan["author"] = careplan["subject"]
        with pytest.raises(MappingError, match=r"CarePlan\.author: .* is a Patient, expected a Practitioner"):
            from_fhir_bundle(bundle)

    def test_not_a_careplan(self) -> None:
        with pytest.raises(MappingError, match="expected CarePlan"):
            from_fhir({"resourceType": "Goal"}, {})


class TestAgreesWithTheContent:
    """The codes the plan writes are the ones the published IPT content defines."""

    @pytest.fixture
    def content(self) -> list[dict[str, Any]]:
        return _content()

    def concepts(self, content: list[dict[str, Any]], url: str) -> dict[str, str]:
        code_system = next(r for r in content if r["resourceType"] == "CodeSystem" and r["url"] == url)
        return {c["code"]: c["display"] for c in code_system["concept"]}

    @pytest.mark.parametrize(
        ("url", "ours"),
        [
            (PROBLEM_AREA_SYSTEM, PROBLEM_AREA_DISPLAY),
            (PHASE_SYSTEM, PHASE_DISPLAY),
            (TECHNIQUE_SYSTEM, TECHNIQUE_DISPLAY),
        ],
        ids=["problem-area", "phase", "technique"],
    )
    def test_code_systems(self, content: list[dict[str, Any]], url: str, ours: dict[str, str]) -> None:
        assert self.concepts(content, url) == ours

    def test_supervisor_role(self, content: list[dict[str, Any]]) -> None:
        supervisor = CARE_TEAM_ROLE_CODING["supervisor"]
        assert supervisor["code"] in self.concepts(content, supervisor["system"])

    def test_plan_definition_and_sample_worksheets_exist(self, content: list[dict[str, Any]]) -> None:
        urls = {r.get("url") for r in content}
        assert IPT_PLAN_DEFINITION in urls
        worksheets = {
            worksheet
            for phase in sample_plan().phases
            for block in phase.blocks
            for activity in block.activities
            for worksheet in activity.worksheets
        }
        assert worksheets
        assert {f"{QUESTIONNAIRE_BASE}/{w}" for w in worksheets} <= urls
