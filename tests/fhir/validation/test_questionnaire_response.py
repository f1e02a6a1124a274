"""QuestionnaireResponse validated against its Questionnaire, rule by rule.

Spec clauses under test (https://hl7.org/fhir/R4/questionnaireresponse.html#link and questionnaire.html):
linkIds exist at the same place and keep their order; answer value[x] matches item.type; group and display
items take no answer; repeats=false allows one answer / one group occurrence; required items are answered
in a completed or amended response; answerOption and answerValueSet membership; enableWhen with every
operator and enableBehavior; disabled items stay unanswered; maxLength and the minValue, maxValue,
minLength, minOccurs, maxOccurs extensions; nested answer items; qrs-1; the status lifecycle.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from service.errors import Issue
from service.fhir.validation import check_answer, check_status_transition, validate_response
from tests.fhir.builders import (
    AREA_SYSTEM,
    EXT_MAX_OCCURS,
    EXT_MIN_OCCURS,
    EXT_MIN_VALUE,
    VALUE_SETS,
    VS_AREA,
    answer,
    coding,
    display,
    ext,
    group,
    item,
    operators_worksheet,
    options,
    people_worksheet,
    question,
    questionnaire,
    response,
    value_options,
    when,
)

JSON = dict[str, Any]


def people_response(status: str = "completed") -> JSON:
    """A valid response to `people_worksheet`; the comments give each item's index."""
    return response(
        item(  # 0
            "person",
            items=[
                item("person.name", answer(valueString="Ann")),
                item("person.ring", answer(valueInteger=1)),
                item("person.relation", answer(valueCoding=coding("spouse"))),
                item("person.notes", answer(valueString="close")),
                item("person.conflict", answer(valueBoolean=True)),
                item(
                    "person.conflict-detail",
                    items=[
                        item("person.conflict.what", answer(valueString="money")),
                        item("person.conflict.when", answer(valueDate="2023-02-01")),
                    ],
                ),
            ],
        ),
        item(  # 1
            "person",
            items=[
                item("person.name", answer(valueString="Bob")),
                item("person.ring", answer(valueInteger=3)),
                item("person.relation", answer(valueCoding=coding("parent"))),
                item("person.conflict", answer(valueBoolean=False)),
            ],
        ),
        item("mode", answer(valueCoding=coding("talk"))),  # 2
        item("talk", items=[item("talk.plan", answer(valueString="On Sunday"))]),  # 3
        item(
            "has-support", answer(item("support.who", answer(valueString="My sister")), valueBoolean=True)
        ),  # 4
        item("mood", answer(valueDecimal=6.5)),  # 5
        item("started", answer(valueDateTime="2024-05-01T09:00:00+02:00")),  # 6
        item("alarm", answer(valueTime="08:30:00")),  # 7
        item("link", answer(valueUri="https://example.org/x")),  # 8
        item(
            "file", answer(valueAttachment={"contentType": "image/png", "url": "https://example.org/p.png"})
        ),  # 9
        item("therapist", answer(valueReference={"reference": "Practitioner/t1"})),  # 10
        item("weight", answer(valueQuantity={"value": 70, "unit": "kg"})),  # 11
        item("feeling", answer(valueCoding=coding("sad")), answer(valueString="tired")),  # 12
        item("area", answer(valueCoding=coding("grief", AREA_SYSTEM))),  # 13
        item("score", answer(valueInteger=2)),  # 14
        item("other", answer(valueString="nothing")),  # 15
        item("birth", answer(valueDate="1990-04-02")),  # 16
        status=status,
    )


def check(resp: JSON, form: JSON | None = None, **kwargs: Any) -> list[Issue]:
    kwargs.setdefault("value_sets", VALUE_SETS.get)
    return validate_response(resp, form if form is not None else people_worksheet(), **kwargs)


def found(issues: list[Issue]) -> list[tuple[str | None, str | None, str]]:
    return [(i.expression, i.code, i.severity) for i in issues]


def errors(issues: list[Issue]) -> list[tuple[str | None, str | None]]:
    return [(i.expression, i.code) for i in issues if i.severity == "error"]


class TestValidResponses:
    def test_a_complete_response_with_every_type_is_accepted(self) -> None:
        assert check(people_response()) == []

    def test_an_amended_response_is_held_to_the_same_rules(self) -> None:
        assert check(people_response("amended")) == []

    def test_an_empty_in_progress_response_is_accepted(self) -> None:
        issues = check(response(status="in-progress"))
        assert errors(issues) == []
        assert {i.severity for i in issues} == {"warning"}  # the portal may still show what is left to do

    def test_a_relative_questionnaire_reference_is_left_to_the_caller(self) -> None:
        resp = people_response()
        resp["questionnaire"] = "Questionnaire/test"
        assert check(resp) == []


class TestHeader:
    def test_unknown_status_code(self) -> None:
        assert found(check(people_response("done"))) == [
            ("QuestionnaireResponse.status", "code-invalid", "error")
        ]

    def test_missing_questionnaire_canonical(self) -> None:
        resp = people_response()
        del resp["questionnaire"]
        assert errors(check(resp)) == [("QuestionnaireResponse.questionnaire", "required")]

    @pytest.mark.parametrize(
        "canonical",
        [
            "http://example.org/fhir/ipt/Questionnaire/other|1.0.0",
            "http://example.org/fhir/ipt/Questionnaire/test|2.0.0",
        ],
    )
    def test_a_response_for_another_questionnaire_or_version(self, canonical: str) -> None:
        resp = people_response()
        resp["questionnaire"] = canonical
        assert errors(check(resp)) == [("QuestionnaireResponse.questionnaire", "invalid")]


class TestStructure:
    def test_unknown_link_id_at_the_top(self) -> None:
        resp = people_response()
        resp["item"][5]["linkId"] = "nonsense"
        issues = check(resp)
        assert found(issues) == [("QuestionnaireResponse.item[5]", "not-found", "error")]
        assert issues[0].diagnostics == "linkId 'nonsense' does not exist in the Questionnaire"

    def test_unknown_link_id_inside_a_group(self) -> None:
        resp = people_response()
        resp["item"][1]["item"][3]["linkId"] = "person.age"
        assert errors(check(resp)) == [("QuestionnaireResponse.item[1].item[3]", "not-found")]

    def test_item_moved_out_of_its_group(self) -> None:
        resp = people_response()
        resp["item"].insert(2, item("person.conflict", answer(valueBoolean=True)))
        issues = check(resp)
        assert errors(issues) == [("QuestionnaireResponse.item[2]", "structure")]
        assert "puts it under 'Person' (linkId person)" in issues[0].diagnostics

    def test_items_out_of_order(self) -> None:
        resp = people_response()
        resp["item"][5], resp["item"][6] = resp["item"][6], resp["item"][5]
        issues = check(resp)
        assert errors(issues) == [("QuestionnaireResponse.item[6]", "structure")]
        assert "out of order" in issues[0].diagnostics

    def test_the_same_question_twice(self) -> None:
        resp = people_response()
        resp["item"].insert(6, item("mood", answer(valueDecimal=2)))
        assert errors(check(resp)) == [("QuestionnaireResponse.item[6]", "structure")]

    def test_answers_and_child_items_together_break_qrs_1(self) -> None:
        resp = people_response()
        resp["item"][4]["item"] = [item("support.who", answer(valueString="x"))]
        assert errors(check(resp)) == [("QuestionnaireResponse.item[4]", "invariant")]

    def test_children_of_a_question_belong_under_its_answer(self) -> None:
        resp = people_response()
        resp["item"][4] = item("has-support", items=[item("support.who", answer(valueString="x"))])
        assert errors(check(resp)) == [
            ("QuestionnaireResponse.item[4].item[0]", "structure"),
            ("QuestionnaireResponse.item[16]", "business-rule"),  # "birth" needs an answer to has-support
            ("QuestionnaireResponse.item[4]", "required"),
        ]

    def test_a_group_takes_no_answer(self) -> None:
        resp = people_response()
        resp["item"][3] = item("talk", answer(valueString="x"), answer(valueString="y"))
        assert errors(check(resp)) == [
            ("QuestionnaireResponse.item[3].answer[0]", "structure"),
            ("QuestionnaireResponse.item[3].answer[1]", "structure"),
            ("QuestionnaireResponse.item[3]", "required"),
        ]

    def test_a_display_item_takes_no_answer(self) -> None:
        resp = people_response()
        resp["item"].insert(0, item("intro", answer(valueString="read")))
        assert errors(check(resp)) == [("QuestionnaireResponse.item[0].answer[0]", "structure")]

    def test_a_display_item_may_be_echoed(self) -> None:
        resp = people_response()
        resp["item"].insert(0, item("intro"))
        assert check(resp) == []

    def test_all_problems_are_reported_not_only_the_first(self) -> None:
        resp = people_response()
        resp["item"][5]["answer"][0] = {"valueString": "high"}
        resp["item"][7]["answer"][0] = {"valueTime": "25:00:00"}
        resp["item"][14]["answer"][0] = {"valueInteger": 9}
        assert errors(check(resp)) == [
            ("QuestionnaireResponse.item[5].answer[0]", "value"),
            ("QuestionnaireResponse.item[7].answer[0]", "value"),
            ("QuestionnaireResponse.item[14].answer[0]", "code-invalid"),
        ]


class TestAnswerTypes:
    @pytest.mark.parametrize(
        ("index", "wrong"),
        [
            (5, {"valueInteger": 6}),  # decimal
            (6, {"valueDate": "2024-05-01"}),  # dateTime
            (7, {"valueString": "8:30"}),  # time
            (8, {"valueString": "https://example.org"}),  # url
            (9, {"valueUri": "https://example.org/p.png"}),  # attachment
            (10, {"valueString": "Dr Who"}),  # reference
            (11, {"valueDecimal": 70}),  # quantity
            (12, {"valueInteger": 1}),  # open-choice
            (13, {"valueString": "grief"}),  # choice
            (16, {"valueDateTime": "1990-04-02T00:00:00Z"}),  # date
        ],
    )
    def test_a_value_of_the_wrong_type(self, index: int, wrong: JSON) -> None:
        resp = people_response()
        resp["item"][index]["answer"][0] = wrong
        assert errors(check(resp)) == [(f"QuestionnaireResponse.item[{index}].answer[0]", "value")]

    @pytest.mark.parametrize(
        ("path", "wrong"),
        [
            ((0, "person.name"), {"valueInteger": 5}),  # string
            ((0, "person.ring"), {"valueDecimal": 1.5}),  # integer
            ((0, "person.conflict"), {"valueString": "yes"}),  # boolean
            ((0, "person.notes"), {"valueBoolean": True}),  # text
        ],
    )
    def test_a_value_of_the_wrong_type_inside_a_group(self, path: tuple[int, str], wrong: JSON) -> None:
        resp = people_response()
        children = resp["item"][path[0]]["item"]
        k = next(i for i, child in enumerate(children) if child["linkId"] == path[1])
        children[k]["answer"][0] = wrong
        assert (f"QuestionnaireResponse.item[0].item[{k}].answer[0]", "value") in errors(check(resp))

    def test_the_diagnostics_say_what_is_expected(self) -> None:
        resp = people_response()
        resp["item"][0]["item"][1]["answer"][0] = {"valueString": "one"}
        issues = check(resp)
        assert (
            issues[0].diagnostics
            == "'Closeness ring' (linkId person.ring) expects a whole number (valueInteger), not valueString"
        )

    @pytest.mark.parametrize(
        ("index", "wrong"),
        [
            (5, {"valueDecimal": True}),
            (6, {"valueDateTime": "2024-05-01T09:00:00"}),  # a time needs a zone
            (7, {"valueTime": "24:00:00"}),
            (16, {"valueDate": "2023-02-30"}),
            (16, {"valueDate": "31.12.2020"}),
            (8, {"valueUri": "not a url"}),
            (11, {"valueQuantity": {"value": "70"}}),
            (13, {"valueCoding": {"system": AREA_SYSTEM}}),
            (15, {"valueString": ""}),
        ],
    )
    def test_a_malformed_value(self, index: int, wrong: JSON) -> None:
        resp = people_response()
        resp["item"][index]["answer"][0] = wrong
        assert errors(check(resp)) == [(f"QuestionnaireResponse.item[{index}].answer[0]", "value")]

    def test_an_integer_out_of_32_bit_range(self) -> None:
        resp = people_response()
        resp["item"][0]["item"][1]["answer"][0] = {"valueInteger": 2**31}
        assert ("QuestionnaireResponse.item[0].item[1].answer[0]", "value") in errors(check(resp))

    def test_an_answer_without_a_value(self) -> None:
        resp = people_response()
        resp["item"][15]["answer"][0] = {}
        assert errors(check(resp)) == [("QuestionnaireResponse.item[15].answer[0]", "required")]

    def test_an_answer_with_two_values(self) -> None:
        resp = people_response()
        resp["item"][15]["answer"][0] = {"valueString": "a", "valueInteger": 1}
        assert errors(check(resp)) == [("QuestionnaireResponse.item[15].answer[0]", "structure")]


class TestRepeats:
    def test_a_second_answer_to_a_question_that_does_not_repeat(self) -> None:
        resp = people_response()
        resp["item"][5]["answer"].append({"valueDecimal": 3})
        issues = check(resp)
        assert found(issues) == [("QuestionnaireResponse.item[5].answer[1]", "structure", "error")]
        assert issues[0].diagnostics == "'Mood today' (linkId mood) takes only one answer"

    def test_a_repeating_question_takes_several_answers(self) -> None:
        resp = people_response()
        resp["item"][12]["answer"].append({"valueCoding": coding("calm")})
        assert check(resp) == []

    def test_a_group_that_does_not_repeat_appears_once(self) -> None:
        resp = people_response()
        resp["item"].insert(4, copy.deepcopy(resp["item"][3]))
        assert errors(check(resp)) == [("QuestionnaireResponse.item[4]", "structure")]

    def test_max_occurs_of_a_repeating_group(self) -> None:
        resp = people_response()
        for _ in range(3):
            resp["item"].insert(1, copy.deepcopy(resp["item"][1]))
        assert found(check(resp)) == [("QuestionnaireResponse.item[4]", "structure", "error")]

    def test_min_and_max_occurs_of_a_question(self) -> None:
        form = questionnaire(
            question(
                "likes",
                "string",
                repeats=True,
                extension=[ext(EXT_MIN_OCCURS, valueInteger=2), ext(EXT_MAX_OCCURS, valueInteger=3)],
            )
        )
        few = response(item("likes", answer(valueString="a")))
        many = response(item("likes", *[answer(valueString=c) for c in "abcd"]))
        enough = response(item("likes", answer(valueString="a"), answer(valueString="b")))
        assert errors(check(few, form)) == [("QuestionnaireResponse.item[0]", "required")]
        assert errors(check(many, form)) == [("QuestionnaireResponse.item[0].answer[3]", "structure")]
        assert check(enough, form) == []

    def test_min_occurs_of_a_group_is_only_a_warning_while_in_progress(self) -> None:
        form = questionnaire(
            group(
                "row",
                question("row.x", "string"),
                repeats=True,
                extension=[ext(EXT_MIN_OCCURS, valueInteger=2)],
            )
        )
        row = item("row", items=[item("row.x", answer(valueString="a"))])
        assert errors(check(response(row), form)) == [("QuestionnaireResponse.item[0]", "required")]
        assert found(check(response(row, status="in-progress"), form)) == [
            ("QuestionnaireResponse.item[0]", "required", "warning")
        ]


class TestRequired:
    def test_a_missing_top_level_item_is_reported_on_the_response(self) -> None:
        resp = people_response()
        del resp["item"][2:4]  # mode, and the talk group it enables
        issues = check(resp)
        assert found(issues) == [("QuestionnaireResponse", "required", "error")]
        assert issues[0].diagnostics == "'How will you do it' (linkId mode) is required"

    def test_a_missing_item_in_a_group_is_reported_on_the_group(self) -> None:
        resp = people_response()
        del resp["item"][1]["item"][0]
        issues = check(resp)
        assert found(issues) == [("QuestionnaireResponse.item[1]", "required", "error")]
        assert issues[0].diagnostics == "'Name' (linkId person.name) is required"

    def test_an_item_present_without_answer_is_reported_on_the_item(self) -> None:
        resp = people_response()
        del resp["item"][0]["item"][2]["answer"]
        assert errors(check(resp)) == [("QuestionnaireResponse.item[0].item[2]", "required")]

    def test_a_missing_item_under_an_answer_is_reported_on_the_answer(self) -> None:
        resp = people_response()
        del resp["item"][4]["answer"][0]["item"]
        assert errors(check(resp)) == [("QuestionnaireResponse.item[4].answer[0]", "required")]

    def test_a_required_group_needs_at_least_one_answer(self) -> None:
        form = questionnaire(group("g", question("g.a", "string"), question("g.b", "string"), required=True))
        resp = response(item("g", items=[item("g.a")]))
        assert errors(check(resp, form)) == [("QuestionnaireResponse.item[0]", "required")]
        resp["item"][0]["item"][0]["answer"] = [{"valueString": "x"}]
        assert check(resp, form) == []

    def test_a_missing_required_repeating_group(self) -> None:
        resp = people_response()
        del resp["item"][0:2]
        assert errors(check(resp)) == [("QuestionnaireResponse", "required")]

    def test_required_is_a_warning_while_in_progress(self) -> None:
        resp = people_response("in-progress")
        del resp["item"][1]["item"][0]
        assert found(check(resp)) == [("QuestionnaireResponse.item[1]", "required", "warning")]

    def test_required_does_not_apply_to_a_disabled_item(self) -> None:
        resp = people_response()
        resp["item"][2]["answer"][0]["valueCoding"] = coding("write")
        del resp["item"][3]  # the talk group, disabled now, with its required talk.plan
        assert check(resp) == []

    def test_required_children_of_an_absent_optional_group_are_not_enforced(self) -> None:
        resp = people_response()
        del resp["item"][0]["item"][5]  # conflict details, although the conflict answer enables them
        resp["item"][0]["item"][4]["answer"][0]["valueBoolean"] = False
        assert check(resp) == []


class TestOptions:
    def test_a_code_outside_the_options(self) -> None:
        resp = people_response()
        resp["item"][2]["answer"][0]["valueCoding"] = coding("sing")
        issues = check(resp)
        assert ("QuestionnaireResponse.item[2].answer[0]", "code-invalid") in errors(issues)
        assert issues[0].diagnostics == (
            "'How will you do it' (linkId mode): code 'sing' (system "
            "http://example.org/fhir/ipt/CodeSystem/test) is not one of the allowed answers"
        )

    def test_codes_are_compared_by_system_and_code(self) -> None:
        resp = people_response()
        resp["item"][0]["item"][2]["answer"][0]["valueCoding"] = coding("spouse", "http://other.org")
        assert errors(check(resp)) == [("QuestionnaireResponse.item[0].item[2].answer[0]", "code-invalid")]

    def test_the_display_of_a_coding_does_not_matter(self) -> None:
        resp = people_response()
        resp["item"][0]["item"][2]["answer"][0]["valueCoding"] = coding("spouse", display="Husband")
        assert check(resp) == []

    def test_open_choice_accepts_free_text_but_not_a_foreign_code(self) -> None:
        resp = people_response()
        resp["item"][12]["answer"] = [{"valueString": "anything"}, {"valueCoding": coding("bored")}]
        assert errors(check(resp)) == [("QuestionnaireResponse.item[12].answer[1]", "code-invalid")]

    @pytest.mark.parametrize(
        ("key", "values", "good", "bad"),
        [
            ("valueInteger", (1, 2), 2, 3),
            ("valueDate", ("2024-01-01", "2024-02-01"), "2024-02-01", "2024-03-01"),
            ("valueTime", ("08:00:00",), "08:00:00", "09:00:00"),
            ("valueString", ("a", "b"), "a", "c"),
            (
                "valueReference",
                ({"reference": "Patient/1"},),
                {"reference": "Patient/1"},
                {"reference": "Patient/2"},
            ),
        ],
    )
    def test_options_of_other_types_compare_by_value(
        self, key: str, values: tuple[Any, ...], good: Any, bad: Any
    ) -> None:
        form = questionnaire(question("pick", "choice", answerOption=value_options(key, *values)))
        assert check(response(item("pick", answer(**{key: good}))), form) == []
        assert errors(check(response(item("pick", answer(**{key: bad}))), form)) == [
            ("QuestionnaireResponse.item[0].answer[0]", "code-invalid")
        ]

    def test_a_code_outside_the_value_set(self) -> None:
        resp = people_response()
        resp["item"][13]["answer"][0]["valueCoding"] = coding("joy", AREA_SYSTEM)
        issues = check(resp)
        assert errors(issues) == [("QuestionnaireResponse.item[13].answer[0]", "code-invalid")]
        assert VS_AREA in issues[0].diagnostics

    def test_an_unknown_value_set_gives_one_warning(self) -> None:
        form = people_worksheet()
        form["item"].insert(-1, question("area2", "choice", answerValueSet=VS_AREA))
        resp = people_response()
        resp["item"].insert(16, item("area2", answer(valueCoding=coding("grief", AREA_SYSTEM))))
        assert found(check(resp, form, value_sets=lambda canonical: None)) == [
            ("QuestionnaireResponse.item[13].answer[0]", "not-found", "warning")
        ]
        assert found(check(resp, form, value_sets=None)) == [
            ("QuestionnaireResponse.item[13].answer[0]", "not-found", "warning")
        ]

    def test_a_contained_value_set_is_resolved_locally(self) -> None:
        form = questionnaire(question("pick", "choice", answerValueSet="#colours"))
        form["contained"] = [
            {
                "resourceType": "ValueSet",
                "id": "colours",
                "status": "active",
                "compose": {"include": [{"system": "urn:c", "concept": [{"code": "red"}]}]},
            }
        ]
        assert check(response(item("pick", answer(valueCoding=coding("red", "urn:c")))), form) == []
        assert errors(check(response(item("pick", answer(valueCoding=coding("blue", "urn:c")))), form)) == [
            ("QuestionnaireResponse.item[0].answer[0]", "code-invalid")
        ]


class TestEnableWhen:
    @staticmethod
    def operators_response(n: int, d: str, t: str, s: str, q: float, c: str, *extra: JSON) -> JSON:
        return response(
            item("n", answer(valueInteger=n)),
            item("d", answer(valueDate=d)),
            item("t", answer(valueTime=t)),
            item("s", answer(valueString=s)),
            item("q", answer(valueQuantity={"value": q, "unit": "kg"})),
            item("c", answer(valueCoding=coding(c))),
            *extra,
        )

    @pytest.mark.parametrize(
        ("values", "link_id", "enabled"),
        [
            ((6, "1999-12-31", "13:00:00", "yes", 3, "blue"), "n-gt", True),
            ((5, "1999-12-31", "13:00:00", "yes", 3, "blue"), "n-gt", False),
            ((5, "1999-12-31", "13:00:00", "yes", 3, "blue"), "n-le", True),
            ((6, "1999-12-31", "13:00:00", "yes", 3, "blue"), "n-le", False),
            ((6, "1999-12-31", "13:00:00", "yes", 3, "blue"), "d-lt", True),
            ((6, "2000-01-01", "13:00:00", "yes", 3, "blue"), "d-lt", False),
            ((6, "2000-01-01", "13:00:00", "yes", 3, "blue"), "d-ge", True),
            ((6, "1999-12-31", "13:00:00", "yes", 3, "blue"), "d-ge", False),
            ((6, "1999-12-31", "12:00:01", "yes", 3, "blue"), "t-gt", True),
            ((6, "1999-12-31", "12:00:00", "yes", 3, "blue"), "t-gt", False),
            ((6, "1999-12-31", "13:00:00", "yes", 3, "blue"), "s-eq", True),
            ((6, "1999-12-31", "13:00:00", "no", 3, "blue"), "s-eq", False),
            ((6, "1999-12-31", "13:00:00", "yes", 2.5, "blue"), "q-gt", True),
            ((6, "1999-12-31", "13:00:00", "yes", 2, "blue"), "q-gt", False),
            ((6, "1999-12-31", "13:00:00", "yes", 3, "green"), "c-ne", True),
            ((6, "1999-12-31", "13:00:00", "yes", 3, "red"), "c-ne", False),
            ((1, "1999-12-31", "13:00:00", "yes", 3, "blue"), "all", True),
            ((0, "1999-12-31", "13:00:00", "yes", 3, "blue"), "all", False),
            ((1, "1999-12-31", "13:00:00", "yes", 3, "green"), "all", False),
            ((1, "1999-12-31", "13:00:00", "yes", 3, "green"), "gone", True),
        ],
    )
    def test_every_operator(self, values: tuple[Any, ...], link_id: str, enabled: bool) -> None:
        resp = self.operators_response(*values, item(link_id, answer(valueString="x")))
        disabled = ("QuestionnaireResponse.item[6]", "business-rule")
        # Other required items may be missing here; only the state of the item under test matters.
        assert (disabled in errors(validate_response(resp, operators_worksheet()))) is not enabled

    def test_not_equal_is_true_when_there_is_no_answer(self) -> None:
        form = questionnaire(
            question("c", "choice", answerOption=options("red")),
            question("x", "string", enableWhen=[when("c", "!=", answerCoding=coding("red"))]),
        )
        assert check(response(item("x", answer(valueString="fine"))), form) == []

    def test_exists_false(self) -> None:
        form = questionnaire(
            question("a", "string"),
            question("b", "string", enableWhen=[when("a", "exists", answerBoolean=False)]),
        )
        assert check(response(item("b", answer(valueString="x"))), form) == []
        assert errors(
            check(response(item("a", answer(valueString="y")), item("b", answer(valueString="x"))), form)
        ) == [("QuestionnaireResponse.item[1]", "business-rule")]

    def test_an_answer_to_a_disabled_item(self) -> None:
        resp = people_response()
        resp["item"][2]["answer"][0]["valueCoding"] = coding(
            "write"
        )  # disables talk; "other" needs mood >= 5 now
        issues = check(resp)
        assert found(issues) == [("QuestionnaireResponse.item[3]", "business-rule", "error")]
        assert issues[0].diagnostics == (
            "'Talk' (linkId talk) must be left unanswered: the answers given do not enable it "
            "(it depends on linkId mode)"
        )

    def test_enable_behavior_any(self) -> None:
        resp = people_response()
        resp["item"][2]["answer"][0]["valueCoding"] = coding("write")
        resp["item"][3] = item("write-plan", answer(valueString="a letter"))
        assert check(resp) == []  # "other": mode is write, but mood 6.5 >= 5
        resp["item"][5]["answer"][0]["valueDecimal"] = 4
        assert errors(check(resp)) == [("QuestionnaireResponse.item[15]", "business-rule")]

    def test_a_condition_is_evaluated_within_its_own_group_occurrence(self) -> None:
        resp = people_response()
        resp["item"][1]["item"].insert(
            3, item("person.notes", answer(valueString="distant"))
        )  # Bob is ring 3
        assert errors(check(resp)) == [("QuestionnaireResponse.item[1].item[3]", "business-rule")]

    def test_only_the_outermost_disabled_item_is_reported(self) -> None:
        resp = people_response()
        resp["item"][0]["item"][4]["answer"][0]["valueBoolean"] = False
        assert errors(check(resp)) == [("QuestionnaireResponse.item[0].item[5]", "business-rule")]

    def test_children_under_an_answer_follow_their_condition(self) -> None:
        resp = people_response()
        resp["item"][4]["answer"][0]["valueBoolean"] = False
        assert errors(check(resp)) == [("QuestionnaireResponse.item[4].answer[0].item[0]", "business-rule")]

    def test_an_answer_to_a_disabled_item_is_a_warning_while_in_progress(self) -> None:
        resp = people_response("in-progress")
        resp["item"][2]["answer"][0]["valueCoding"] = coding("write")
        assert found(check(resp)) == [("QuestionnaireResponse.item[3]", "business-rule", "warning")]

    def test_a_disabled_trigger_counts_as_unanswered(self) -> None:
        form = questionnaire(
            question("a", "boolean"),
            question("b", "boolean", enableWhen=[when("a", "=", answerBoolean=True)]),
            question("c", "string", enableWhen=[when("b", "exists", answerBoolean=True)]),
        )
        resp = response(
            item("a", answer(valueBoolean=False)),
            item("b", answer(valueBoolean=True)),
            item("c", answer(valueString="x")),
        )
        assert errors(check(resp, form)) == [
            ("QuestionnaireResponse.item[1]", "business-rule"),
            ("QuestionnaireResponse.item[2]", "business-rule"),
        ]

    def test_a_cycle_of_conditions_does_not_loop(self) -> None:
        form = questionnaire(
            question("a", "string", enableWhen=[when("b", "exists", answerBoolean=True)]),
            question("b", "string", enableWhen=[when("a", "exists", answerBoolean=True)]),
        )
        resp = response(item("a", answer(valueString="x")), item("b", answer(valueString="y")))
        assert errors(check(resp, form)) == []


class TestBounds:
    def test_max_length(self) -> None:
        resp = people_response()
        resp["item"][0]["item"][0]["answer"][0]["valueString"] = "A" * 41
        issues = check(resp)
        assert found(issues) == [("QuestionnaireResponse.item[0].item[0].answer[0]", "too-long", "error")]
        assert issues[0].diagnostics == "'Name' (linkId person.name) allows at most 40 characters (has 41)"

    def test_max_length_of_a_url(self) -> None:
        resp = people_response()
        resp["item"][8]["answer"][0]["valueUri"] = "https://example.org/" + "x" * 50
        assert errors(check(resp)) == [("QuestionnaireResponse.item[8].answer[0]", "too-long")]

    def test_min_length(self) -> None:
        resp = people_response()
        resp["item"][0]["item"][0]["answer"][0]["valueString"] = "A"
        assert errors(check(resp)) == [("QuestionnaireResponse.item[0].item[0].answer[0]", "value")]

    @pytest.mark.parametrize("ring", [0, 5])
    def test_min_and_max_value_of_an_integer(self, ring: int) -> None:
        resp = people_response()
        resp["item"][1]["item"][1]["answer"][0]["valueInteger"] = ring
        issues = check(resp)
        assert errors(issues) == [("QuestionnaireResponse.item[1].item[1].answer[0]", "value")]
        assert issues[0].diagnostics.endswith("must be at least 1" if ring == 0 else "must be at most 4")

    @pytest.mark.parametrize(("mood", "ok"), [(0, True), (10, True), (10.5, False), (-0.1, False)])
    def test_min_and_max_value_of_a_decimal(self, mood: float, ok: bool) -> None:
        resp = people_response()
        resp["item"][5]["answer"][0]["valueDecimal"] = mood
        assert errors(check(resp)) == ([] if ok else [("QuestionnaireResponse.item[5].answer[0]", "value")])

    def test_min_value_of_a_date(self) -> None:
        form = questionnaire(question("when", "date", extension=[ext(EXT_MIN_VALUE, valueDate="2020-01-01")]))
        assert check(response(item("when", answer(valueDate="2020-01-01"))), form) == []
        assert check(response(item("when", answer(valueDate="2020"))), form) == []  # too imprecise to refuse
        assert errors(check(response(item("when", answer(valueDate="2019-12-31"))), form)) == [
            ("QuestionnaireResponse.item[0].answer[0]", "value")
        ]

    def test_bounds_are_warnings_while_in_progress(self) -> None:
        resp = people_response("in-progress")
        resp["item"][1]["item"][1]["answer"][0]["valueInteger"] = 9
        assert found(check(resp)) == [("QuestionnaireResponse.item[1].item[1].answer[0]", "value", "warning")]


class TestCheckAnswer:
    def test_a_single_answer_against_its_item(self) -> None:
        ring = people_worksheet()["item"][1]["item"][1]
        assert check_answer(ring, {"valueInteger": 2}) == []
        assert [i.code for i in check_answer(ring, {"valueInteger": 7})] == ["value"]
        assert [i.code for i in check_answer(ring, {"valueString": "2"})] == ["value"]


class TestStatusTransition:
    @pytest.mark.parametrize(
        ("previous", "new"),
        [
            (None, "in-progress"),
            (None, "completed"),
            (None, "stopped"),
            ("in-progress", "in-progress"),
            ("in-progress", "completed"),
            ("in-progress", "stopped"),
            ("in-progress", "entered-in-error"),
            ("stopped", "in-progress"),
            ("completed", "amended"),
            ("completed", "entered-in-error"),
            ("amended", "amended"),
            ("amended", "entered-in-error"),
        ],
    )
    def test_allowed(self, previous: str | None, new: str) -> None:
        assert check_status_transition(previous, new) == []

    @pytest.mark.parametrize(
        ("previous", "new"),
        [
            (None, "amended"),
            (None, "entered-in-error"),
            ("in-progress", "amended"),
            ("completed", "completed"),
            ("completed", "in-progress"),
            ("completed", "stopped"),
            ("amended", "completed"),
            ("amended", "in-progress"),
            ("entered-in-error", "completed"),
            ("entered-in-error", "entered-in-error"),
        ],
    )
    def test_refused(self, previous: str | None, new: str) -> None:
        assert found(check_status_transition(previous, new)) == [
            ("QuestionnaireResponse.status", "business-rule", "error")
        ]

    def test_a_completed_response_is_told_to_become_amended(self) -> None:
        (issue,) = check_status_transition("completed", "in-progress")
        assert "amended" in issue.diagnostics

    def test_an_unknown_code(self) -> None:
        assert found(check_status_transition("in-progress", "done")) == [
            ("QuestionnaireResponse.status", "code-invalid", "error")
        ]


def test_the_example_layout_of_the_brief() -> None:
    """`QuestionnaireResponse.item[2].item[0].answer[0]`: a group's child's answer, by exact position."""
    form = questionnaire(
        display("a"),
        question("b", "string"),
        group("people", question("people.name", "string", text="Name", required=True)),
    )
    resp = response(
        item("a"),
        item("b", answer(valueString="x")),
        item("people", items=[item("people.name", answer(valueInteger=1))]),
    )
    assert errors(validate_response(resp, form)) == [
        ("QuestionnaireResponse.item[2].item[0].answer[0]", "value")
    ]
    resp["item"][2]["item"][0] = item("people.name")
    issues = validate_response(resp, form)
    assert issues[0].diagnostics == "'Name' (linkId people.name) is required"
