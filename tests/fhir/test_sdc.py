"""SDC helpers: `$populate` pre-fill, the ordinal total, and observation-based `$extract`.

Spec clauses under test: http://hl7.org/fhir/uv/sdc/populate.html (an in-progress response citing
`url|version`, items mirroring the form, answers carried over only where still valid);
http://hl7.org/fhir/uv/sdc/extraction.html#observation-based-extraction (LOINC-coded items under an
`observationExtract` flag become Observations with category survey, derivedFrom the response);
http://hl7.org/fhir/R4/extension-ordinalvalue.html (scores of the chosen options, computed server-side).
"""

from __future__ import annotations

import copy
from typing import Any

from service.fhir.sdc import (
    compute_ordinal_total,
    extract_observations,
    extracts_observations,
    populate_response,
)
from service.fhir.validation import validate_response
from tests.fhir.builders import (
    EXT_EXTRACT,
    LOINC,
    Q_URL,
    Q_VERSION,
    VALUE_SETS,
    answer,
    coding,
    ext,
    group,
    item,
    options,
    people_worksheet,
    phq9_like,
    question,
    questionnaire,
    response,
)

JSON = dict[str, Any]


def populate(form: JSON, previous: JSON | None = None) -> JSON:
    return populate_response(
        form, subject="Patient/p1", author="Patient/p1", previous=previous, authored="2024-06-01T08:00:00Z"
    )


def link_ids(items: list[JSON]) -> list[str]:
    return [i["linkId"] for i in items]


class TestPopulateResponse:
    def test_header(self) -> None:
        result = populate(people_worksheet())
        assert {k: v for k, v in result.items() if k != "item"} == {
            "resourceType": "QuestionnaireResponse",
            "questionnaire": f"{Q_URL}|{Q_VERSION}",
            "status": "in-progress",
            "subject": {"reference": "Patient/p1"},
            "author": {"reference": "Patient/p1"},
            "authored": "2024-06-01T08:00:00Z",
        }

    def test_without_version_and_author(self) -> None:
        result = populate_response(
            questionnaire(question("a", "string"), version=None),
            subject="Patient/p2",
            author=None,
            previous=None,
            authored="2024-06-01",
        )
        assert result["questionnaire"] == Q_URL
        assert "author" not in result

    def test_items_mirror_the_questionnaire(self) -> None:
        form = people_worksheet()
        result = populate(form)
        assert link_ids(result["item"]) == link_ids(form["item"])
        assert link_ids(result["item"][1]["item"]) == link_ids(form["item"][1]["item"])
        assert result["item"][1]["item"][0] == {"linkId": "person.name", "text": "Name"}
        assert not any("answer" in i for i in result["item"])

    def test_the_empty_form_is_a_valid_in_progress_response(self) -> None:
        result = populate(people_worksheet())
        issues = validate_response(result, people_worksheet(), value_sets=VALUE_SETS.get)
        assert [i for i in issues if i.severity == "error"] == []

    def test_initial_values_and_selected_options(self) -> None:
        chosen = options("a", "b")
        chosen[1]["initialSelected"] = True
        form = questionnaire(
            question("n", "integer", initial=[{"valueInteger": 3}]),
            question("c", "choice", answerOption=chosen),
        )
        result = populate(form)
        assert result["item"][0]["answer"] == [{"valueInteger": 3}]
        assert result["item"][1]["answer"] == [{"valueCoding": coding("b", display="B")}]

    def test_answers_of_a_previous_response_are_carried_over(self) -> None:
        form = people_worksheet()
        previous = response(
            item(
                "person",
                items=[
                    item("person.name", answer(valueString="Ann")),
                    item("person.ring", answer(valueInteger=2)),
                ],
            ),
            item(
                "person",
                items=[item("person.name", answer(valueString="Bob"))],
            ),
            item("mode", answer(valueCoding=coding("talk"))),
            item("has-support", answer(item("support.who", answer(valueString="Sis")), valueBoolean=True)),
            item("feeling", answer(valueCoding=coding("sad")), answer(valueString="tired")),
        )
        result = populate(form, previous)
        people = [i for i in result["item"] if i["linkId"] == "person"]
        assert [p["item"][0].get("answer") for p in people] == [
            [{"valueString": "Ann"}],
            [{"valueString": "Bob"}],
        ]
        assert people[0]["item"][1]["answer"] == [{"valueInteger": 2}]
        by_link = {i["linkId"]: i for i in result["item"]}
        assert by_link["mode"]["answer"] == [{"valueCoding": coding("talk")}]
        support = by_link["has-support"]["answer"][0]
        assert support["valueBoolean"] is True
        assert support["item"][0]["answer"] == [{"valueString": "Sis"}]
        assert by_link["feeling"]["answer"] == [{"valueCoding": coding("sad")}, {"valueString": "tired"}]

    def test_answers_no_longer_valid_are_dropped(self) -> None:
        form = questionnaire(
            question("ring", "integer"),
            question("mode", "choice", answerOption=options("talk", "write")),
            question("one", "string"),
            group("g", question("g.x", "string")),
        )
        previous = response(
            item("ring", answer(valueString="close")),  # the item changed type
            item("mode", answer(valueCoding=coding("sing"))),  # the option was removed
            item("one", answer(valueString="a"), answer(valueString="b")),  # no longer repeats
            item("gone", answer(valueString="x")),  # the item was removed
            item("g.x", answer(valueString="moved")),  # not at the same place any more
        )
        result = populate(form, previous)
        assert [i.get("answer") for i in result["item"]] == [None, None, [{"valueString": "a"}], None]
        assert result["item"][3]["item"] == [{"linkId": "g.x", "text": "G X"}]


class TestComputeOrdinalTotal:
    @staticmethod
    def phq(first: str, second: str, total: int | None = None, status: str = "completed") -> JSON:
        children = [
            item("q1", answer(valueCoding=coding(first, LOINC))),
            item("q2", answer(valueCoding=coding(second, LOINC))),
        ]
        if total is not None:
            children.append(item("total", answer(valueInteger=total)))
        return response(item("panel", items=children), status=status, id="r1")

    def test_the_sum_of_the_chosen_options(self) -> None:
        assert compute_ordinal_total(self.phq("LA6569-3", "LA6571-9"), phq9_like()) == 4

    def test_the_submitted_total_is_ignored(self) -> None:
        assert compute_ordinal_total(self.phq("LA6568-5", "LA6568-5", total=27), phq9_like()) == 0

    def test_an_unanswered_required_item_gives_no_total(self) -> None:
        resp = self.phq("LA6569-3", "LA6571-9")
        del resp["item"][0]["item"][1]
        assert compute_ordinal_total(resp, phq9_like()) is None

    def test_an_answer_outside_the_options_gives_no_total(self) -> None:
        assert compute_ordinal_total(self.phq("LA6569-3", "LA0000-0"), phq9_like()) is None

    def test_a_form_without_scores_has_no_total(self) -> None:
        assert (
            compute_ordinal_total(
                response(item("mode", answer(valueCoding=coding("talk")))), people_worksheet()
            )
            is None
        )

    def test_weights_on_the_option_coding_count_too(self) -> None:
        form = phq9_like()
        for definition in form["item"][0]["item"][:2]:
            for option in definition["answerOption"]:
                option["valueCoding"]["extension"] = option.pop("extension")
        assert compute_ordinal_total(self.phq("LA6570-1", "LA6570-1"), form) == 4


class TestExtractsObservations:
    """Whether a form can yield Observations at all: a transaction skips the forms that cannot."""

    def test_a_marked_loinc_item_extracts(self) -> None:
        assert extracts_observations(phq9_like())
        loinc = [{"system": LOINC, "code": "44250-9"}]
        flag = [ext(EXT_EXTRACT, valueBoolean=True)]
        assert extracts_observations(questionnaire(question("q", "integer", code=loinc, extension=flag)))
        # Marked on the form, inherited by every item.
        assert extracts_observations(questionnaire(question("q", "integer", code=loinc), extension=flag))

    def test_unmarked_or_uncoded_items_do_not(self) -> None:
        loinc = [{"system": LOINC, "code": "44250-9"}]
        flag = [ext(EXT_EXTRACT, valueBoolean=True)]
        off = [ext(EXT_EXTRACT, valueBoolean=False)]
        assert not extracts_observations(questionnaire(question("q", "integer", code=loinc)))
        assert not extracts_observations(questionnaire(question("q", "integer", extension=flag)))
        local = [{"system": "http://example.org/codes", "code": "x"}]
        assert not extracts_observations(questionnaire(question("q", "integer", code=local, extension=flag)))
        assert not extracts_observations(
            questionnaire(question("q", "integer", code=loinc, extension=off), extension=flag)
        )


class TestExtractObservations:
    def test_observations_for_extractable_loinc_items(self) -> None:
        resp = TestComputeOrdinalTotal.phq("LA6569-3", "LA6571-9", total=99)
        resp["item"][0]["item"].append(item("comment", answer(valueString="rough week")))
        resp["item"][0]["item"].append(item("local", answer(valueString="not LOINC")))
        resp["item"].append(item("private", answer(valueInteger=5)))
        resp["author"] = {"reference": "Patient/p1"}
        resp["basedOn"] = [{"reference": "CarePlan/cp1"}]
        observations = extract_observations(resp, phq9_like())
        assert [o["code"]["coding"][0]["code"] for o in observations] == [
            "44250-9",
            "44255-8",
            "00000-0",
            "44261-6",
        ]
        first = observations[0]
        assert first == {
            "resourceType": "Observation",
            "status": "final",
            "category": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                            "code": "survey",
                            "display": "Survey",
                        }
                    ]
                }
            ],
            "code": {"coding": [{"system": LOINC, "code": "44250-9"}], "text": "Little interest"},
            "basedOn": [{"reference": "CarePlan/cp1"}],
            "subject": {"reference": "Patient/p1"},
            "effectiveDateTime": "2024-05-31T10:00:00Z",
            "performer": [{"reference": "Patient/p1"}],
            "valueCodeableConcept": {"coding": [coding("LA6569-3", LOINC)]},
            "derivedFrom": [{"reference": "QuestionnaireResponse/r1"}],
        }
        assert observations[2]["valueString"] == "rough week"
        assert observations[3]["valueInteger"] == 4  # computed, not the submitted 99

    def test_the_total_is_extracted_even_when_not_submitted(self) -> None:
        observations = extract_observations(TestComputeOrdinalTotal.phq("LA6570-1", "LA6570-1"), phq9_like())
        assert observations[-1]["code"]["coding"] == [{"system": LOINC, "code": "44261-6"}]
        assert observations[-1]["valueInteger"] == 4

    def test_no_total_when_it_cannot_be_computed(self) -> None:
        resp = TestComputeOrdinalTotal.phq("LA6570-1", "LA6570-1", total=4)
        del resp["item"][0]["item"][1]
        codes = [o["code"]["coding"][0]["code"] for o in extract_observations(resp, phq9_like())]
        assert codes == ["44250-9"]

    def test_an_unfinished_response_yields_nothing(self) -> None:
        resp = TestComputeOrdinalTotal.phq("LA6569-3", "LA6571-9", status="in-progress")
        assert extract_observations(resp, phq9_like()) == []

    def test_an_item_can_opt_out_of_its_groups_extraction(self) -> None:
        form = phq9_like()
        form["item"][0]["item"][0]["extension"] = [ext(EXT_EXTRACT, valueBoolean=False)]
        codes = [
            o["code"]["coding"][0]["code"]
            for o in extract_observations(TestComputeOrdinalTotal.phq("LA6569-3", "LA6571-9"), form)
        ]
        assert codes == ["44255-8", "44261-6"]

    def test_value_types_map_onto_observation_values(self) -> None:
        form = questionnaire(
            question("d", "decimal", code=[{"system": LOINC, "code": "1-1"}]),
            question("q", "quantity", code=[{"system": LOINC, "code": "2-2"}]),
            question("b", "boolean", code=[{"system": LOINC, "code": "3-3"}]),
            question("day", "date", code=[{"system": LOINC, "code": "4-4"}]),
            question("f", "attachment", code=[{"system": LOINC, "code": "5-5"}]),
            extension=[ext(EXT_EXTRACT, valueBoolean=True)],
        )
        resp = response(
            item("d", answer(valueDecimal=1.5)),
            item("q", answer(valueQuantity={"value": 70, "unit": "kg"})),
            item("b", answer(valueBoolean=False)),
            item("day", answer(valueDate="2024-01-02")),
            item("f", answer(valueAttachment={"url": "https://example.org/x"})),
        )
        values = [
            {k: v for k, v in o.items() if k.startswith("value")}
            for o in extract_observations(copy.deepcopy(resp), form)
        ]
        assert values == [
            {"valueQuantity": {"value": 1.5}},
            {"valueQuantity": {"value": 70, "unit": "kg"}},
            {"valueBoolean": False},
            {"valueDateTime": "2024-01-02"},
        ]
        assert all("derivedFrom" not in o for o in extract_observations(resp, form))  # no id yet
