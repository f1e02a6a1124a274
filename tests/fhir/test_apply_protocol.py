"""The pure `$apply` of the IPT protocol: applicability conditions and the draft CarePlan's shape.

Spec: https://hl7.org/fhir/R4/plandefinition.html#12.18.3.3 (applying a PlanDefinition; applicability
conditions), https://hl7.org/fhir/R4/plandefinition-operation-apply.html (a CarePlan, not stored).
"""

from typing import Any

import pytest

from mappings.careplan import from_fhir, to_fhir_transaction
from mappings.codes import PROBLEM_AREAS
from mappings.content import load_content
from mappings.r4 import model_class
from service.errors import Unprocessable
from service.fhir.apply import applies, apply_plan_definition

CONTENT = load_content()
PLAN_DEFINITION = next(r for r in CONTENT if r["resourceType"] == "PlanDefinition")
ACTIVITY_DEFINITIONS = {
    f"{r['url']}|{r['version']}": r for r in CONTENT if r["resourceType"] == "ActivityDefinition"
}


def _condition(expression: str, language: str = "text/fhirpath") -> dict[str, Any]:
    return {
        "condition": [
            {"kind": "applicability", "expression": {"language": language, "expression": expression}}
        ]
    }


def _draft(**kwargs: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = {"subject": "Patient/p", "practitioner": "Practitioner/t", "focus": "grief"}
    arguments.update(kwargs)
    return apply_plan_definition(PLAN_DEFINITION, ACTIVITY_DEFINITIONS, **arguments)


def _resolved(careplan: dict[str, Any]) -> dict[str, dict[str, Any]]:
    resolved = {f"#{c['id']}": c for c in careplan["contained"]}
    resolved["Patient/p"] = {
        "resourceType": "Patient",
        "id": "p",
        "identifier": [{"system": "urn:example:mrn", "value": "1"}],
        "name": [{"text": "P"}],
    }
    resolved["Practitioner/t"] = {
        "resourceType": "Practitioner",
        "id": "t",
        "identifier": [{"system": "urn:example:staff", "value": "2"}],
        "name": [{"text": "T"}],
    }
    resolved["Condition/c"] = {
        "resourceType": "Condition",
        "id": "c",
        "clinicalStatus": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}
            ]
        },
        "code": {"text": "Depression"},
        "subject": {"reference": "Patient/p"},
    }
    return resolved


class TestApplicability:
    @pytest.mark.parametrize(
        ("expression", "focus", "expected"),
        [
            ("%focus = 'grief'", "grief", True),
            ("%focus = 'grief'", "role-dispute", False),
            ("%focus in ('role-dispute' | 'interpersonal-deficits')", "interpersonal-deficits", True),
            ("%focus in ('role-dispute' | 'interpersonal-deficits')", "grief", False),
            ("%focus = 'grief'", None, False),
            ("%focus in ('grief' | 'role-dispute')", None, False),
        ],
    )
    def test_focus_conditions(self, expression: str, focus: str | None, expected: bool) -> None:
        assert applies(_condition(expression), focus, "action") is expected

    def test_no_condition_always_applies(self) -> None:
        assert applies({}, None, "action")

    def test_start_conditions_do_not_decide_applicability(self) -> None:
        action = {
            "condition": [{"kind": "start", "expression": {"language": "text/fhirpath", "expression": "x"}}]
        }
        assert applies(action, "grief", "action")

    @pytest.mark.parametrize(
        ("action", "where"),
        [
            (_condition("%focus.exists()"), "action.condition[0].expression.expression"),
            (_condition("%focus = 'grief'", "text/cql"), "action.condition[0].expression.language"),
        ],
    )
    def test_other_expressions_are_refused_not_guessed(self, action: dict[str, Any], where: str) -> None:
        with pytest.raises(Unprocessable) as raised:
            applies(action, "grief", "action")
        assert raised.value.issues[0].expression == where


class TestDraft:
    def test_is_a_valid_r4_proposal_of_the_protocol(self) -> None:
        careplan = _draft()
        model_class("CarePlan").model_validate(careplan)
        assert careplan["status"] == "draft"
        assert careplan["intent"] == "proposal"
        assert careplan["instantiatesCanonical"] == [f"{PLAN_DEFINITION['url']}|{PLAN_DEFINITION['version']}"]
        assert careplan["author"] == {"reference": "Practitioner/t"}
        assert [g["description"]["text"] for g in careplan["contained"][1:]] == [
            g["description"]["text"] for g in PLAN_DEFINITION["goal"]
        ]

    @pytest.mark.parametrize("focus", PROBLEM_AREAS)
    def test_the_mapping_reads_it_and_writes_the_same_activities_back(self, focus: str) -> None:
        careplan = _draft(focus=focus, conditions=["Condition/c"])
        plan = from_fhir(careplan, _resolved(careplan))
        assert plan.status == "draft"
        assert plan.intent == "proposal"
        assert plan.primary_focus == focus
        assert [p.code for p in plan.phases] == ["initial", "intermediate", "termination"]
        assert [(p.sessions.first, p.sessions.last) for p in plan.phases] == [(1, 4), (5, 10), (11, 16)]
        assert (plan.structure.sessions_min, plan.structure.sessions_max) == (12, 16)
        written = next(
            e["resource"]
            for e in to_fhir_transaction(plan)["entry"]
            if e["resource"]["resourceType"] == "CarePlan"
        )
        # Performers differ only in form: the therapist's urn:uuid in the transaction, Practitioner/t here.
        assert _without_performers(written["activity"]) == _without_performers(careplan["activity"])

    def test_without_focus_no_conditional_action(self) -> None:
        careplan = _draft(focus=None)
        assert len(careplan["category"]) == 1
        conditional = {
            child["id"]
            for phase in PLAN_DEFINITION["action"]
            for child in phase["action"]
            if child.get("condition")
        }
        assert conditional
        titles = {
            child["title"]
            for phase in PLAN_DEFINITION["action"]
            for child in phase["action"]
            if child.get("condition")
        }
        unconditional = {
            child["title"]
            for phase in PLAN_DEFINITION["action"]
            for child in phase["action"]
            if not child.get("condition")
        }
        drawn = {
            next(e["valueString"] for e in a["extension"] if e["url"].endswith("careplan-activity-title"))
            for a in careplan["activity"]
            if any(e.get("valueCode") == "session" for e in a["extension"])
        }
        assert not drawn & (titles - unconditional)

    def test_an_unknown_focus_is_refused(self) -> None:
        with pytest.raises(Unprocessable):
            _draft(focus="sadness")

    def test_a_missing_activity_definition_is_named(self) -> None:
        with pytest.raises(Unprocessable) as raised:
            apply_plan_definition(PLAN_DEFINITION, {}, subject="Patient/p")
        assert raised.value.issues[0].expression == "PlanDefinition.action"


def _without_performers(activities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**a, "detail": {k: v for k, v in a["detail"].items() if k != "performer"}} for a in activities]
