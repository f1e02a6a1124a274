"""The IPT content as FHIR: structure, codes and references of every generated resource.

Checks the R4 rules the models leave out: required bindings (walked from the models' `enum_values`),
Questionnaire invariants que-2 (unique linkId) and que-12 (enableBehavior with several conditions),
https://hl7.org/fhir/R4/questionnaire.html#invs, and that every canonical the content cites resolves
within the content.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from importlib.resources import files
from typing import Any

import fhirpathpy
import pytest
from fhirpathpy.models import models as fhirpath_models
from pydantic import BaseModel

from mappings import codes
from mappings.content import RESOURCE_ORDER, load_content, worksheet_ids
from mappings.r4 import model_class

CONTENT = load_content()
BY_KEY = {(r["resourceType"], r["id"]): r for r in CONTENT}
QUESTIONNAIRES = [r for r in CONTENT if r["resourceType"] == "Questionnaire"]
CODE_SYSTEM_URLS = {r["url"] for r in CONTENT if r["resourceType"] == "CodeSystem"}
EXTERNAL_SYSTEMS = {codes.LOINC, codes.SNOMED}
R4_MODEL = fhirpath_models["r4"]
SEMVER = re.compile(r"^\d+\.\d+\.\d+$")

# Some `enum_values` lists in the models are cut short ("+", "etc."); these are the full R4 lists.
_COMPLETE_BINDINGS: dict[tuple[str, str], frozenset[str]] = {
    ("QuestionnaireItem", "type"): frozenset(
        {
            "group",
            "display",
            "boolean",
            "decimal",
            "integer",
            "date",
            "dateTime",
            "time",
            "string",
            "text",
            "url",
            "choice",
            "open-choice",
            "attachment",
            "reference",
            "quantity",
        }
    ),
}


def _ids(resources: list[dict[str, Any]]) -> list[str]:
    return [f"{r['resourceType']}/{r['id']}" for r in resources]


def _items(items: list[dict[str, Any]], key: str = "item") -> Iterator[dict[str, Any]]:
    """Questionnaire items (or, with `key="action"`, PlanDefinition actions) in document order."""
    for item in items:
        yield item
        yield from _items(item.get(key, []), key)


def _binding_violations(model: BaseModel, path: str) -> Iterator[str]:
    for name, info in type(model).model_fields.items():
        value = getattr(model, name, None)
        if value is None:
            continue
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        allowed_list = extra.get("enum_values")
        wire = info.alias or name
        allowed: frozenset[str] | None = None
        if isinstance(allowed_list, list):
            complete = not any(v in ("+", "etc.") for v in allowed_list)
            allowed = (
                frozenset(allowed_list) if complete else _COMPLETE_BINDINGS.get((type(model).__name__, wire))
            )
        for index, element in enumerate(value if isinstance(value, list) else [value]):
            where = f"{path}.{wire}[{index}]" if isinstance(value, list) else f"{path}.{wire}"
            if isinstance(element, BaseModel):
                yield from _binding_violations(element, where)
            elif allowed is not None and isinstance(element, str) and element not in allowed:
                yield f"{where} = {element!r} (allowed: {sorted(allowed)})"


class TestInventory:
    def test_resources_come_in_dependency_order(self) -> None:
        order = [RESOURCE_ORDER.index(r["resourceType"]) for r in CONTENT]
        assert order == sorted(order)

    def test_every_resource_has_identity(self) -> None:
        for resource in CONTENT:
            kind, rid = resource["resourceType"], resource["id"]
            assert resource["url"] == f"{codes.IPT_BASE}/{kind}/{rid}", rid
            assert SEMVER.match(resource["version"]), rid
            assert resource["status"] == "active", rid
            assert re.fullmatch(r"[A-Za-z0-9\-.]{1,64}", rid), rid

    def test_urls_are_unique(self) -> None:
        urls = [r["url"] for r in CONTENT]
        assert len(urls) == len(set(urls))

    def test_every_worksheet_of_the_brief_is_there(self) -> None:
        expected = {
            "interpersonal-relationships",
            "goodbye-letter",
            "closeness-circle",
            "wanting-to-be-heard",
            "interpersonal-parenting-tips",
            "self-validation",
            "validating-others",
            "interpersonal-effectiveness-troubleshooting",
            "dearman",
            "journal",
            "dbt-skills-practice-log",
            "meditation-practice",
            "role-transition-exploration",
            "role-play-record",
            "imagery-exercise-record",
            "interpersonal-inventory",
            "psychoeducation-communication-conflict",
            "grief-and-loss-review",
            "feeling-statements-practice",
            "decision-analysis",
            "communication-analysis",
            "support-network-map",
            "relapse-prevention-plan",
            "phq-9",
        }
        assert set(worksheet_ids()) == expected
        assert [q["id"] for q in QUESTIONNAIRES] == worksheet_ids()

    def test_code_systems_match_codes_constants(self) -> None:
        assert {
            codes.PROBLEM_AREA_SYSTEM,
            codes.PHASE_SYSTEM,
            codes.TECHNIQUE_SYSTEM,
            codes.WORKSHEET_SYSTEM,
            codes.CARE_TEAM_ROLE_SYSTEM,
        } <= CODE_SYSTEM_URLS
        areas = BY_KEY[("CodeSystem", "ipt-problem-area")]
        assert tuple(c["code"] for c in areas["concept"]) == codes.PROBLEM_AREAS
        phases = BY_KEY[("CodeSystem", "ipt-phase")]
        assert tuple(c["code"] for c in phases["concept"]) == codes.PHASES

    def test_manifest_lists_every_worksheet_file(self) -> None:
        folder = files("mappings").joinpath("content", "worksheets")
        on_disk = {p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml")}
        assert on_disk == set(worksheet_ids())

    def test_load_content_returns_fresh_copies(self) -> None:
        first = load_content()
        first[0]["id"] = "changed"
        assert load_content()[0]["id"] != "changed"


@pytest.mark.parametrize("resource", CONTENT, ids=_ids(CONTENT))
class TestEveryResource:
    def test_validates_with_the_r4b_model(self, resource: dict[str, Any]) -> None:
        model_class(resource["resourceType"]).model_validate(resource)

    def test_required_bindings_hold(self, resource: dict[str, Any]) -> None:
        model = model_class(resource["resourceType"]).model_validate(resource)
        assert list(_binding_violations(model, resource["resourceType"])) == []


@pytest.mark.parametrize("questionnaire", QUESTIONNAIRES, ids=_ids(QUESTIONNAIRES))
class TestEveryQuestionnaire:
    def test_metadata(self, questionnaire: dict[str, Any]) -> None:
        for key in ("name", "title", "publisher", "description", "purpose"):
            assert questionnaire.get(key), key
        assert questionnaire["subjectType"] == ["Patient"]
        assert questionnaire["code"][0] == {
            "system": codes.WORKSHEET_SYSTEM,
            "code": questionnaire["id"],
            "display": questionnaire["title"],
        }
        kinds = {u["code"]["code"] for u in questionnaire["useContext"]}
        assert kinds == {"focus", "workflow"}

    def test_link_ids_are_unique(self, questionnaire: dict[str, Any]) -> None:
        link_ids = [i["linkId"] for i in _items(questionnaire["item"])]
        assert len(link_ids) == len(set(link_ids))

    def test_enable_when_names_an_earlier_item(self, questionnaire: dict[str, Any]) -> None:
        seen: set[str] = set()
        for item in _items(questionnaire["item"]):
            for condition in item.get("enableWhen", []):
                assert condition["question"] in seen, f"{item['linkId']} depends on {condition['question']}"
            if len(item.get("enableWhen", [])) > 1:
                assert item.get("enableBehavior") in ("all", "any"), item["linkId"]
            seen.add(item["linkId"])

    def test_coded_answers_use_declared_systems(self, questionnaire: dict[str, Any]) -> None:
        declared = CODE_SYSTEM_URLS | EXTERNAL_SYSTEMS
        for item in _items(questionnaire["item"]):
            for option in item.get("answerOption", []):
                assert option["valueCoding"]["system"] in declared, item["linkId"]
            for condition in item.get("enableWhen", []):
                if "answerCoding" in condition:
                    assert condition["answerCoding"]["system"] in declared, item["linkId"]
            if item["type"] == "choice":
                assert item.get("answerOption") or item.get("answerValueSet"), item["linkId"]

    def test_groups_have_children_and_displays_do_not(self, questionnaire: dict[str, Any]) -> None:
        for item in _items(questionnaire["item"]):
            assert bool(item.get("item")) == (item["type"] == "group"), item["linkId"]


class TestCanonicalReferences:
    def test_every_canonical_resolves(self) -> None:
        published = {(r["url"], r["version"]) for r in CONTENT}
        urls = {url for url, _ in published}
        cited: list[str] = []
        for resource in CONTENT:
            if resource["resourceType"] == "ValueSet":
                cited += [include["system"] for include in resource["compose"]["include"]]
            if resource["resourceType"] == "CodeSystem":
                cited.append(resource["valueSet"])
            if resource["resourceType"] == "Questionnaire":
                cited += [i["answerValueSet"] for i in _items(resource["item"]) if "answerValueSet" in i]
            if resource["resourceType"] == "PlanDefinition":
                cited += [
                    a["definitionCanonical"]
                    for a in _items(resource["action"], "action")
                    if "definitionCanonical" in a
                ]
        assert cited
        for canonical in cited:
            url, _, version = canonical.partition("|")
            assert url in urls, f"{canonical} does not resolve"
            if version:
                assert (url, version) in published, f"{canonical}: no such version"

    def test_every_project_code_system_has_its_value_set(self) -> None:
        value_sets = {
            r["compose"]["include"][0]["system"] for r in CONTENT if r["resourceType"] == "ValueSet"
        }
        assert value_sets == CODE_SYSTEM_URLS


class TestTerminology:
    def test_code_systems_are_complete_and_case_sensitive(self) -> None:
        for resource in CONTENT:
            if resource["resourceType"] == "CodeSystem":
                assert resource["content"] == "complete"
                assert resource["caseSensitive"] is True
                assert resource["count"] == len(resource["concept"])

    def test_problem_areas_carry_synonyms(self) -> None:
        grief = BY_KEY[("CodeSystem", "ipt-problem-area")]["concept"][0]
        assert "complicated grief" in [d["value"] for d in grief["designation"]]

    def test_phases_carry_session_ranges(self) -> None:
        phases = BY_KEY[("CodeSystem", "ipt-phase")]["concept"]
        ranges = [
            tuple(p["valueInteger"] for p in c["property"] if p["code"] in ("first-session", "last-session"))
            for c in phases
        ]
        assert ranges == [(1, 4), (5, 10), (11, 16)]

    def test_every_technique_has_an_activity_definition(self) -> None:
        techniques = [c["code"] for c in BY_KEY[("CodeSystem", "ipt-technique")]["concept"]]
        assert len(techniques) == 24
        for code in techniques:
            activity = BY_KEY[("ActivityDefinition", code)]
            assert activity["code"]["coding"][0] == {
                "system": codes.TECHNIQUE_SYSTEM,
                "code": code,
                "display": activity["title"],
            }

    def test_worksheet_code_system_lists_every_worksheet(self) -> None:
        concepts = BY_KEY[("CodeSystem", "ipt-worksheet")]["concept"]
        assert [c["code"] for c in concepts] == worksheet_ids()

    def test_clinical_supervisor_role(self) -> None:
        roles = BY_KEY[("CodeSystem", "ipt-care-team-role")]["concept"]
        assert [c["code"] for c in roles] == ["clinical-supervisor"]


def _item(questionnaire_id: str, link_id: str) -> dict[str, Any]:
    for item in _items(BY_KEY[("Questionnaire", questionnaire_id)]["item"]):
        if item["linkId"] == link_id:
            return item
    raise AssertionError(f"{questionnaire_id} has no item {link_id}")


def _extension(item: dict[str, Any], url: str) -> Any:
    values = [e for e in item.get("extension", []) if e["url"] == url]
    assert len(values) == 1, url
    return values[0]


class TestWorksheets:
    def test_relationships_take_five_to_ten_people(self) -> None:
        people = _item("interpersonal-relationships", "people")
        assert people["type"] == "group"
        assert people["repeats"] is True
        assert _extension(people, codes.EXT_MIN_OCCURS)["valueInteger"] == 5
        assert _extension(people, codes.EXT_MAX_OCCURS)["valueInteger"] == 10
        assert _item("interpersonal-relationships", "people.name")["required"] is True

    def test_goodbye_letter_prompts_only_in_guided_mode(self) -> None:
        prompts = _item("goodbye-letter", "prompts")
        assert prompts["enableWhen"] == [
            {
                "question": "mode",
                "operator": "=",
                "answerCoding": {
                    "system": f"{codes.IPT_BASE}/CodeSystem/ipt-letter-mode",
                    "code": "guided",
                    "display": "Guided",
                },
            }
        ]
        assert _item("goodbye-letter", "letter")["enableWhen"][0]["answerCoding"]["code"] == "free-form"

    def test_closeness_ring_is_bounded(self) -> None:
        ring = _item("closeness-circle", "people.ring")
        assert _extension(ring, codes.EXT_MIN_VALUE)["valueInteger"] == 1
        assert _extension(ring, codes.EXT_MAX_VALUE)["valueInteger"] == 4

    def test_psychoeducation_handout_is_display_only(self) -> None:
        items = BY_KEY[("Questionnaire", "psychoeducation-communication-conflict")]["item"]
        assert {i["type"] for i in items} == {"display"}

    def test_decision_analysis_has_options_choice_and_plan(self) -> None:
        assert _item("decision-analysis", "options")["repeats"] is True
        assert _item("decision-analysis", "options.pros")["type"] == "text"
        assert _item("decision-analysis", "choice")["required"] is True
        assert _item("decision-analysis", "plan.step")["type"] == "string"

    def test_relapse_prevention_plan_covers_section_7(self) -> None:
        link_ids = {i["linkId"] for i in _items(BY_KEY[("Questionnaire", "relapse-prevention-plan")]["item"])}
        assert {
            "warning-signs",
            "support-people",
            "helpful-strategies",
            "skills-to-use",
            "long-term-goals",
            "if-symptoms-return",
            "review-date",
        } <= link_ids
        skill = _item("relapse-prevention-plan", "skills-to-use.skill")
        assert skill["answerValueSet"] == f"{codes.IPT_BASE}/ValueSet/ipt-technique"


def _ordinal(option: dict[str, Any]) -> Any:
    return _extension(option, codes.EXT_ORDINAL_VALUE)["valueDecimal"]


class TestPhq9:
    QUESTIONNAIRE = BY_KEY[("Questionnaire", "phq-9")]

    def test_panel_and_total_codes(self) -> None:
        assert {"system": codes.LOINC, "code": codes.LOINC_PHQ9_PANEL} in [
            {"system": c["system"], "code": c["code"]} for c in self.QUESTIONNAIRE["code"]
        ]
        total = _item("phq-9", "phq9-total")
        assert total["code"][0]["code"] == codes.LOINC_PHQ9_TOTAL
        assert total["type"] == "integer"
        assert total["readOnly"] is True
        assert (
            _extension(total, codes.EXT_CALCULATED_EXPRESSION)["valueExpression"]["language"]
            == "text/fhirpath"
        )

    def test_nine_items_scored_zero_to_three(self) -> None:
        questions = [i for i in self.QUESTIONNAIRE["item"] if re.fullmatch(r"phq9-\d", i["linkId"])]
        assert len(questions) == 9
        for question in questions:
            scored = [
                (o["valueCoding"]["system"], o["valueCoding"]["code"], _ordinal(o))
                for o in question["answerOption"]
            ]
            assert scored == [
                (codes.LOINC, "LA6568-5", 0),
                (codes.LOINC, "LA6569-3", 1),
                (codes.LOINC, "LA6570-1", 2),
                (codes.LOINC, "LA6571-9", 3),
            ]

    @pytest.mark.parametrize(
        ("answers", "total"),
        [
            (["LA6568-5"] * 9, 0),
            (["LA6571-9"] * 9, 27),
            (
                [
                    "LA6569-3",
                    "LA6570-1",
                    "LA6571-9",
                    "LA6568-5",
                    "LA6569-3",
                    "LA6569-3",
                    "LA6568-5",
                    "LA6570-1",
                    "LA6568-5",
                ],
                10,
            ),
        ],
    )
    def test_calculated_total_sums_the_scores(self, answers: list[str], total: int) -> None:
        response = {
            "resourceType": "QuestionnaireResponse",
            "status": "completed",
            "item": [
                {"linkId": f"phq9-{n}", "answer": [{"valueCoding": {"system": codes.LOINC, "code": code}}]}
                for n, code in enumerate(answers, start=1)
            ]
            + [
                {
                    "linkId": "phq9-difficulty",
                    "answer": [{"valueCoding": {"system": codes.LOINC, "code": "LA6571-9"}}],
                }
            ],
        }
        expression = _extension(_item("phq-9", "phq9-total"), codes.EXT_CALCULATED_EXPRESSION)[
            "valueExpression"
        ]
        # The R4 model lets the engine resolve `answer.value` to `valueCoding`, as a form filler's would.
        result = fhirpathpy.evaluate(response, expression["expression"], {"resource": response}, R4_MODEL)
        assert result == [total]


class TestPlanDefinition:
    PLAN = BY_KEY[("PlanDefinition", "ipt-depression")]

    def test_identity_and_type(self) -> None:
        assert self.PLAN["url"] == f"{codes.PLAN_DEFINITION_BASE}/ipt-depression"
        assert self.PLAN["type"]["coding"][0]["code"] == "clinical-protocol"
        assert self.PLAN["goal"][0]["target"][0]["measure"]["coding"][0]["code"] == codes.LOINC_PHQ9_TOTAL

    def test_phases_are_chained_weekly_fifty_minute_blocks(self) -> None:
        phases = self.PLAN["action"]
        assert [p["id"] for p in phases] == list(codes.PHASES)
        assert "relatedAction" not in phases[0]
        assert phases[1]["relatedAction"] == [{"actionId": "initial", "relationship": "after-end"}]
        assert phases[2]["relatedAction"] == [{"actionId": "intermediate", "relationship": "after-end"}]
        counts = [p["timingTiming"]["repeat"]["count"] for p in phases]
        assert counts == [4, 6, 6]
        for phase in phases:
            repeat = phase["timingTiming"]["repeat"]
            assert (repeat["frequency"], repeat["period"], repeat["periodUnit"]) == (1, 1, "wk")
            assert (repeat["duration"], repeat["durationUnit"]) == (50, "min")
            goal_ids = {g["id"] for g in self.PLAN["goal"]}
            assert set(phase["goalId"]) <= goal_ids

    def test_grief_analysis_applies_only_to_grief(self) -> None:
        action = next(
            a for a in _items(self.PLAN["action"], "action") if a.get("id") == "intermediate-grief-analysis"
        )
        assert action["condition"] == [
            {
                "kind": "applicability",
                "expression": {
                    "description": "Only when the treatment focus is grief",
                    "language": "text/fhirpath",
                    "expression": "%focus = 'grief'",
                },
            }
        ]
        assert action["definitionCanonical"].startswith(f"{codes.ACTIVITY_DEFINITION_BASE}/grief-analysis|")

    def test_conditions_select_by_focus(self) -> None:
        def applies(action: dict[str, Any], focus: str) -> bool:
            conditions = action.get("condition", [])
            return all(
                fhirpathpy.evaluate({}, c["expression"]["expression"], {"focus": focus}) == [True]
                for c in conditions
            )

        children = [a for phase in self.PLAN["action"] for a in phase["action"]]
        grief_only = {a["id"] for a in children if applies(a, "grief") and not applies(a, "role-dispute")}
        assert "intermediate-grief-analysis" in grief_only
        assert "intermediate-worksheet-goodbye-letter" in grief_only
        assert all(applies(a, "role-transition") for a in children if a["id"].endswith("-session"))

    def test_session_activity(self) -> None:
        session = BY_KEY[("ActivityDefinition", "ipt-session")]
        assert session["code"]["coding"][0]["code"] == codes.SNOMED_IPT
        repeat = session["timingTiming"]["repeat"]
        assert (repeat["count"], repeat["countMax"], repeat["duration"]) == (12, 16, 50)

    def test_worksheets_are_cited_by_version(self) -> None:
        canonicals = [
            a["definitionCanonical"]
            for a in _items(self.PLAN["action"], "action")
            if a.get("definitionCanonical", "").startswith(codes.QUESTIONNAIRE_BASE)
        ]
        assert canonicals
        assert all("|" in c for c in canonicals)
        termination = [a["id"] for a in self.PLAN["action"][2]["action"]]
        assert "termination-worksheet-relapse-prevention-plan" in termination
