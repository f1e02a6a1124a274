"""Index values extracted from resources with the FHIR R4 search parameter expressions.

Spec: https://hl7.org/fhir/R4/search.html#ptypes (token, string, reference, date, uri, number, quantity),
https://hl7.org/fhir/R4/search.html#date (precision of values), https://hl7.org/fhir/R4/references.html
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from service.fhir.extraction import (
    DateValue,
    IndexValue,
    NumberValue,
    ReferenceValue,
    StringValue,
    TokenValue,
    UriValue,
    compile_parameter,
    compiled_parameters,
    date_range,
    extract_index_values,
    extract_with,
    is_canonical,
    normalize_string,
    parse_reference,
    rewrite_expression,
    split_union,
)
from service.fhir.search_parameters import SearchParameter, parameters_for, served_types

BASE = "https://ipt.example.org/fhir"


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def values_of(resource: dict[str, Any], param: str, *, base_url: str | None = None) -> list[IndexValue]:
    return [v for v in extract_index_values(resource, base_url=base_url) if v.param == param]


def custom(resource: dict[str, Any], code: str, kind: str, expression: str) -> list[IndexValue]:
    parameter = SearchParameter(code, kind, expression, f"urn:test:{code}")  # type: ignore[arg-type]
    return extract_with([compile_parameter(parameter, resource["resourceType"])], resource)


class TestNormalizeString:
    def test_folds_case(self) -> None:
        assert normalize_string("McDONALD") == "mcdonald"

    def test_strips_accents(self) -> None:
        assert normalize_string("Müller-Lüdenscheidt Zoë") == "muller-ludenscheidt zoe"

    def test_folds_sharp_s(self) -> None:
        assert normalize_string("Strauß") == "strauss"

    def test_collapses_whitespace(self) -> None:
        assert normalize_string("  Anna \t Maria ") == "anna maria"


class TestDateRange:
    def test_year_is_the_whole_year(self) -> None:
        assert date_range("2024") == (utc(2024, 1, 1), utc(2025, 1, 1))

    def test_month_is_the_whole_month(self) -> None:
        assert date_range("2024-02") == (utc(2024, 2, 1), utc(2024, 3, 1))

    def test_december_ends_next_year(self) -> None:
        assert date_range("2024-12") == (utc(2024, 12, 1), utc(2025, 1, 1))

    def test_day_is_the_whole_day(self) -> None:
        assert date_range("2024-02-29") == (utc(2024, 2, 29), utc(2024, 3, 1))

    def test_minute_is_the_whole_minute(self) -> None:
        assert date_range("2024-05-01T10:30Z") == (utc(2024, 5, 1, 10, 30), utc(2024, 5, 1, 10, 31))

    def test_second_is_the_whole_second(self) -> None:
        assert date_range("2024-05-01T10:30:15Z") == (
            utc(2024, 5, 1, 10, 30, 15),
            utc(2024, 5, 1, 10, 30, 16),
        )

    def test_milliseconds_are_one_millisecond(self) -> None:
        assert date_range("2024-05-01T10:30:15.120Z") == (
            utc(2024, 5, 1, 10, 30, 15, 120000),
            utc(2024, 5, 1, 10, 30, 15, 121000),
        )

    def test_fraction_beyond_microseconds_is_truncated(self) -> None:
        assert date_range("2024-05-01T10:30:15.1234567Z") == (
            utc(2024, 5, 1, 10, 30, 15, 123456),
            utc(2024, 5, 1, 10, 30, 15, 123457),
        )

    def test_offset_is_converted_to_utc(self) -> None:
        assert date_range("2024-05-01T23:30:00-02:00")[0] == utc(2024, 5, 2, 1, 30)

    def test_missing_timezone_is_utc(self) -> None:
        assert date_range("2024-05-01T10:00:00")[0] == utc(2024, 5, 1, 10)

    def test_year_9999_is_open_ended(self) -> None:
        assert date_range("9999") == (utc(9999, 1, 1), None)

    @pytest.mark.parametrize(
        "value", ["2024-13", "2023-02-29", "24-05-01", "2024-05-01T25:00:00Z", "May 2024", ""]
    )
    def test_rejects_invalid_value(self, value: str) -> None:
        with pytest.raises(ValueError, match="not"):
            date_range(value)

    def test_rejects_invalid_offset(self) -> None:
        with pytest.raises(ValueError, match="offset"):
            date_range("2024-05-01T10:00:00+15:00")


class TestParseReference:
    def test_relative(self) -> None:
        assert parse_reference("Patient/p1") == ReferenceValue("", "Patient", "p1")

    def test_relative_with_version(self) -> None:
        assert parse_reference("Patient/p1/_history/3") == ReferenceValue("", "Patient", "p1", version="3")

    def test_absolute_elsewhere_keeps_the_url(self) -> None:
        assert parse_reference("https://other.org/fhir/Patient/p1", base_url=BASE) == ReferenceValue(
            "", "Patient", "p1", url="https://other.org/fhir/Patient/p1"
        )

    def test_absolute_to_this_server_is_local(self) -> None:
        assert parse_reference(f"{BASE}/Patient/p1", base_url=BASE + "/") == ReferenceValue(
            "", "Patient", "p1"
        )

    def test_urn_is_kept_whole(self) -> None:
        assert parse_reference("urn:uuid:0b1c") == ReferenceValue("", None, None, url="urn:uuid:0b1c")

    def test_contained_is_not_indexed(self) -> None:
        assert parse_reference("#contained-1") is None

    @pytest.mark.parametrize(
        "reference", ["Patient/p1/extra", "Patient/A/Patient/B", "Patient/", "Patient/a b"]
    )
    def test_malformed_reference_is_not_indexed(self, reference: str) -> None:
        assert parse_reference(reference) is None

    def test_absolute_url_with_the_restful_shape_only_in_its_query_is_kept_whole(self) -> None:
        assert parse_reference("https://other.org/x?Patient/p1", base_url=BASE) == ReferenceValue(
            "", None, None, url="https://other.org/x?Patient/p1"
        )


class TestSplitUnion:
    def test_splits_top_level_bars(self) -> None:
        assert split_union("A.b | (A.c as date) | A.d.where(e = 'x|y')") == [
            "A.b",
            "(A.c as date)",
            "A.d.where(e = 'x|y')",
        ]


class TestRewriteExpression:
    def test_keeps_only_the_parts_of_the_type(self) -> None:
        expression = parameters_for("CarePlan")["patient"].expression

        assert rewrite_expression(expression, "CarePlan") == [("CarePlan.subject", "Patient")]

    def test_roots_resource_at_the_type(self) -> None:
        assert rewrite_expression("Resource.meta.tag", "Goal") == [("Goal.meta.tag", None)]

    def test_as_operator_becomes_of_type(self) -> None:
        assert rewrite_expression("(Goal.target.due as date)", "Goal") == [
            ("(Goal.target.due.ofType(date))", None)
        ]

    def test_as_function_becomes_of_type(self) -> None:
        assert rewrite_expression(
            "Condition.onset.as(dateTime) | Condition.onset.as(Period)", "Condition"
        ) == [
            ("Condition.onset.ofType(dateTime)", None),
            ("Condition.onset.ofType(Period)", None),
        ]

    def test_rejects_other_resolve(self) -> None:
        with pytest.raises(ValueError, match="resolve"):
            rewrite_expression("Goal.subject.resolve().name", "Goal")


class TestCompiledParameters:
    @pytest.mark.parametrize("resource_type", sorted(served_types()))
    def test_every_parameter_of_every_type_compiles(self, resource_type: str) -> None:
        compiled = compiled_parameters(resource_type)

        assert {c.parameter.code for c in compiled} == set(parameters_for(resource_type))

    def test_is_compiled_once_per_type(self) -> None:
        assert compiled_parameters("Goal") is compiled_parameters("Goal")


class TestIsCanonical:
    def test_questionnaire_of_a_response_is_canonical(self) -> None:
        assert is_canonical("QuestionnaireResponse", "questionnaire")

    def test_instantiates_canonical_is_canonical(self) -> None:
        assert is_canonical("CarePlan", "instantiates-canonical")

    def test_subject_is_not_canonical(self) -> None:
        assert not is_canonical("CarePlan", "subject")


class TestTokens:
    def test_codeable_concept_gives_a_row_per_coding_and_one_for_its_text(self) -> None:
        condition = {
            "resourceType": "Condition",
            "subject": {"reference": "Patient/p1"},
            "code": {
                "coding": [
                    {
                        "system": "http://snomed.info/sct",
                        "code": "35489007",
                        "display": "Depressive disorder",
                    },
                    {"system": "http://hl7.org/fhir/sid/icd-10", "code": "F32.1"},
                ],
                "text": "Major Dépression",
            },
        }

        assert values_of(condition, "code") == [
            TokenValue("code", "http://snomed.info/sct", "35489007", "depressive disorder"),
            TokenValue("code", "http://hl7.org/fhir/sid/icd-10", "F32.1"),
            TokenValue("code", None, None, "major depression"),
        ]

    def test_coding_of_meta_tag(self) -> None:
        goal = {"resourceType": "Goal", "meta": {"tag": [{"system": "urn:tags", "code": "ipt"}]}}

        assert values_of(goal, "_tag") == [TokenValue("_tag", "urn:tags", "ipt")]

    def test_security_label(self) -> None:
        goal = {
            "resourceType": "Goal",
            "meta": {
                "security": [
                    {"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}
                ]
            },
        }

        assert values_of(goal, "_security") == [
            TokenValue("_security", "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "R")
        ]

    def test_identifier_with_its_type_text(self) -> None:
        patient = {
            "resourceType": "Patient",
            "identifier": [{"system": "urn:mrn", "value": "12345", "type": {"text": "Medical record"}}],
        }

        assert values_of(patient, "identifier") == [
            TokenValue("identifier", "urn:mrn", "12345", "medical record")
        ]

    def test_contact_point_system_is_the_token_system(self) -> None:
        patient = {"resourceType": "Patient", "telecom": [{"system": "phone", "value": "+41 44 123"}]}

        assert values_of(patient, "telecom") == [TokenValue("telecom", "phone", "+41 44 123")]

    def test_email_takes_only_email_contact_points(self) -> None:
        patient = {
            "resourceType": "Patient",
            "telecom": [{"system": "phone", "value": "+41 44 123"}, {"system": "email", "value": "a@b.org"}],
        }

        assert values_of(patient, "email") == [TokenValue("email", "email", "a@b.org")]
        assert values_of(patient, "phone") == [TokenValue("phone", "phone", "+41 44 123")]

    def test_code_primitive(self) -> None:
        assert values_of({"resourceType": "Patient", "gender": "female"}, "gender") == [
            TokenValue("gender", None, "female")
        ]

    def test_id_is_a_token(self) -> None:
        assert values_of({"resourceType": "Patient", "id": "p1"}, "_id") == [TokenValue("_id", None, "p1")]

    def test_string_primitive_version(self) -> None:
        questionnaire = {"resourceType": "Questionnaire", "status": "active", "version": "1.0.0"}

        assert values_of(questionnaire, "version") == [TokenValue("version", None, "1.0.0")]

    def test_boolean(self) -> None:
        patient = {"resourceType": "Patient", "active": False}

        assert custom(patient, "active", "token", "Patient.active") == [TokenValue("active", None, "false")]

    def test_primitive_extension_without_value_is_skipped(self) -> None:
        patient = {"resourceType": "Patient", "_gender": {"id": "g1", "extension": [{"url": "urn:x"}]}}

        assert values_of(patient, "gender") == []

    def test_nested_backbone_path(self) -> None:
        care_plan = {
            "resourceType": "CarePlan",
            "status": "active",
            "intent": "plan",
            "subject": {"reference": "Patient/p1"},
            "activity": [
                {"detail": {"status": "scheduled", "code": {"coding": [{"system": "urn:ipt", "code": "s1"}]}}}
            ],
        }

        assert values_of(care_plan, "activity-code") == [TokenValue("activity-code", "urn:ipt", "s1")]

    def test_questionnaire_item_code(self) -> None:
        questionnaire = {
            "resourceType": "Questionnaire",
            "status": "active",
            "item": [
                {"linkId": "1", "type": "string", "code": [{"system": "http://loinc.org", "code": "44249-1"}]}
            ],
        }

        assert values_of(questionnaire, "code") == [TokenValue("code", "http://loinc.org", "44249-1")]


class TestStrings:
    def test_human_name_gives_every_part(self) -> None:
        patient = {
            "resourceType": "Patient",
            "name": [
                {"family": "Müller", "given": ["Anna", "Zoë"], "prefix": ["Dr."], "text": "Dr. Anna Müller"}
            ],
        }

        assert values_of(patient, "name") == [
            StringValue("name", "muller", "Müller"),
            StringValue("name", "anna", "Anna"),
            StringValue("name", "zoe", "Zoë"),
            StringValue("name", "dr.", "Dr."),
            StringValue("name", "dr. anna muller", "Dr. Anna Müller"),
        ]

    def test_family_and_given_are_separate_parameters(self) -> None:
        practitioner = {"resourceType": "Practitioner", "name": [{"family": "Weissman", "given": ["Myrna"]}]}

        assert values_of(practitioner, "family") == [StringValue("family", "weissman", "Weissman")]
        assert values_of(practitioner, "given") == [StringValue("given", "myrna", "Myrna")]

    def test_plain_string(self) -> None:
        plan = {"resourceType": "PlanDefinition", "status": "active", "publisher": "IPT Institute"}

        assert values_of(plan, "publisher") == [StringValue("publisher", "ipt institute", "IPT Institute")]

    def test_address_gives_every_part(self) -> None:
        patient = {"resourceType": "Patient", "address": [{"line": ["Hauptstraße 1"], "city": "Zürich"}]}

        assert custom(patient, "address", "string", "Patient.address") == [
            StringValue("address", "hauptstrasse 1", "Hauptstraße 1"),
            StringValue("address", "zurich", "Zürich"),
        ]

    def test_blank_string_is_skipped(self) -> None:
        assert values_of({"resourceType": "Practitioner", "name": [{"family": "  "}]}, "family") == []


class TestReferences:
    def test_relative_reference(self) -> None:
        goal = {"resourceType": "Goal", "subject": {"reference": "Patient/p1"}}

        assert values_of(goal, "subject") == [ReferenceValue("subject", "Patient", "p1")]

    def test_patient_is_the_subject_when_it_is_a_patient(self) -> None:
        goal = {"resourceType": "Goal", "subject": {"reference": "Patient/p1"}}

        assert values_of(goal, "patient") == [ReferenceValue("patient", "Patient", "p1")]

    def test_patient_is_absent_when_the_subject_is_a_group(self) -> None:
        goal = {"resourceType": "Goal", "subject": {"reference": "Group/g1"}}

        assert values_of(goal, "patient") == []

    def test_patient_reads_the_type_of_a_logical_url_from_reference_type(self) -> None:
        response = {
            "resourceType": "QuestionnaireResponse",
            "status": "completed",
            "subject": {"reference": "urn:uuid:7f0e", "type": "Patient"},
        }

        assert values_of(response, "patient") == [
            ReferenceValue("patient", "Patient", None, url="urn:uuid:7f0e")
        ]

    def test_absolute_reference_to_this_server_is_local(self) -> None:
        care_plan = {"resourceType": "CarePlan", "subject": {"reference": f"{BASE}/Patient/p1"}}

        assert values_of(care_plan, "subject", base_url=BASE) == [ReferenceValue("subject", "Patient", "p1")]

    def test_absolute_reference_elsewhere_keeps_the_url(self) -> None:
        care_plan = {
            "resourceType": "CarePlan",
            "subject": {"reference": "https://other.org/fhir/Patient/p1"},
        }

        assert values_of(care_plan, "subject", base_url=BASE) == [
            ReferenceValue("subject", "Patient", "p1", url="https://other.org/fhir/Patient/p1")
        ]

    def test_canonical_with_version(self) -> None:
        response = {
            "resourceType": "QuestionnaireResponse",
            "status": "completed",
            "questionnaire": "http://ipt.example.org/Questionnaire/inventory|2.1",
        }

        assert values_of(response, "questionnaire") == [
            ReferenceValue(
                "questionnaire",
                "Questionnaire",
                None,
                url="http://ipt.example.org/Questionnaire/inventory",
                version="2.1",
            )
        ]

    def test_canonical_to_several_types_has_no_target_type(self) -> None:
        care_plan = {
            "resourceType": "CarePlan",
            "instantiatesCanonical": ["http://ipt.example.org/PlanDefinition/ipt"],
        }

        assert values_of(care_plan, "instantiates-canonical") == [
            ReferenceValue(
                "instantiates-canonical", None, None, url="http://ipt.example.org/PlanDefinition/ipt"
            )
        ]

    def test_identifier_only_reference_is_skipped(self) -> None:
        goal = {"resourceType": "Goal", "subject": {"identifier": {"system": "urn:mrn", "value": "1"}}}

        assert values_of(goal, "subject") == []

    def test_contained_reference_is_skipped(self) -> None:
        goal = {"resourceType": "Goal", "subject": {"reference": "#p"}}

        assert values_of(goal, "subject") == []

    def test_reference_in_a_backbone_element(self) -> None:
        care_team = {
            "resourceType": "CareTeam",
            "participant": [
                {"member": {"reference": "Practitioner/t1"}},
                {"member": {"reference": "RelatedPerson/r1"}},
            ],
        }

        assert values_of(care_team, "participant") == [
            ReferenceValue("participant", "Practitioner", "t1"),
            ReferenceValue("participant", "RelatedPerson", "r1"),
        ]

    def test_condition_of_a_care_plan_is_addresses(self) -> None:
        care_plan = {"resourceType": "CarePlan", "addresses": [{"reference": "Condition/c1"}]}

        assert values_of(care_plan, "condition") == [ReferenceValue("condition", "Condition", "c1")]


class TestDates:
    def test_date_time_has_the_range_of_its_precision(self) -> None:
        response = {
            "resourceType": "QuestionnaireResponse",
            "status": "completed",
            "authored": "2024-05-01T10:00:00+02:00",
        }

        assert values_of(response, "authored") == [
            DateValue("authored", utc(2024, 5, 1, 8), utc(2024, 5, 1, 8, 0, 1))
        ]

    def test_date_is_the_whole_day(self) -> None:
        patient = {"resourceType": "Patient", "birthDate": "1980-07"}

        assert values_of(patient, "birthdate") == [DateValue("birthdate", utc(1980, 7, 1), utc(1980, 8, 1))]

    def test_instant_of_last_updated(self) -> None:
        patient = {"resourceType": "Patient", "meta": {"lastUpdated": "2024-05-01T10:00:00.123Z"}}

        assert values_of(patient, "_lastUpdated") == [
            DateValue("_lastUpdated", utc(2024, 5, 1, 10, 0, 0, 123000), utc(2024, 5, 1, 10, 0, 0, 124000))
        ]

    def test_period_spans_from_start_to_the_end_of_end(self) -> None:
        care_plan = {"resourceType": "CarePlan", "period": {"start": "2024-01-15", "end": "2024-04"}}

        assert values_of(care_plan, "date") == [DateValue("date", utc(2024, 1, 15), utc(2024, 5, 1))]

    def test_period_without_end_is_open(self) -> None:
        care_team = {"resourceType": "CareTeam", "period": {"start": "2024-01-15"}}

        assert values_of(care_team, "date") == [DateValue("date", utc(2024, 1, 15), None)]

    def test_period_without_start_is_open(self) -> None:
        care_team = {"resourceType": "CareTeam", "period": {"end": "2024-01-15"}}

        assert values_of(care_team, "date") == [DateValue("date", None, utc(2024, 1, 16))]

    def test_choice_of_date_time(self) -> None:
        condition = {
            "resourceType": "Condition",
            "subject": {"reference": "Patient/p1"},
            "onsetDateTime": "2023-11",
        }

        assert values_of(condition, "onset-date") == [
            DateValue("onset-date", utc(2023, 11, 1), utc(2023, 12, 1))
        ]

    def test_choice_of_period(self) -> None:
        condition = {
            "resourceType": "Condition",
            "subject": {"reference": "Patient/p1"},
            "onsetPeriod": {"start": "2023-11-02", "end": "2023-11-03"},
        }

        assert values_of(condition, "onset-date") == [
            DateValue("onset-date", utc(2023, 11, 2), utc(2023, 11, 4))
        ]

    def test_choice_of_another_type_is_skipped(self) -> None:
        condition = {
            "resourceType": "Condition",
            "subject": {"reference": "Patient/p1"},
            "onsetString": "childhood",
        }

        assert values_of(condition, "onset-date") == []

    def test_target_date_of_several_targets(self) -> None:
        # `Goal.target.due as date` fails in FHIRPath on two targets; the rewrite to ofType() does not.
        goal = {
            "resourceType": "Goal",
            "target": [
                {"dueDate": "2024-03-01"},
                {"dueDuration": {"value": 12, "unit": "wk"}},
                {"dueDate": "2024-06"},
            ],
        }

        assert values_of(goal, "target-date") == [
            DateValue("target-date", utc(2024, 3, 1), utc(2024, 3, 2)),
            DateValue("target-date", utc(2024, 6, 1), utc(2024, 7, 1)),
        ]

    def test_observation_effective_choice(self) -> None:
        observation = {
            "resourceType": "Observation",
            "status": "final",
            "effectiveInstant": "2024-05-01T10:00:00Z",
        }

        assert values_of(observation, "date") == [
            DateValue("date", utc(2024, 5, 1, 10), utc(2024, 5, 1, 10, 0, 1))
        ]

    def test_timing_events(self) -> None:
        observation = {
            "resourceType": "Observation",
            "status": "final",
            "effectiveTiming": {"event": ["2024-05-01"]},
        }

        assert values_of(observation, "date") == [DateValue("date", utc(2024, 5, 1), utc(2024, 5, 2))]


class TestUris:
    def test_canonical_url_of_content(self) -> None:
        value_set = {
            "resourceType": "ValueSet",
            "status": "active",
            "url": "http://ipt.example.org/ValueSet/areas",
        }

        assert values_of(value_set, "url") == [UriValue("url", "http://ipt.example.org/ValueSet/areas")]

    def test_profile(self) -> None:
        goal = {
            "resourceType": "Goal",
            "meta": {"profile": ["http://ipt.example.org/StructureDefinition/goal"]},
        }

        assert values_of(goal, "_profile") == [
            UriValue("_profile", "http://ipt.example.org/StructureDefinition/goal")
        ]


class TestNumbers:
    def test_quantity_keeps_value_system_and_code(self) -> None:
        observation = {
            "resourceType": "Observation",
            "valueQuantity": {
                "value": 12.5,
                "system": "http://unitsofmeasure.org",
                "code": "kg",
                "unit": "kilo",
            },
        }

        assert custom(observation, "value-quantity", "quantity", "(Observation.value as Quantity)") == [
            NumberValue("value-quantity", Decimal("12.5"), "http://unitsofmeasure.org", "kg")
        ]

    def test_number(self) -> None:
        observation = {"resourceType": "Observation", "valueInteger": 14}

        assert custom(observation, "value", "number", "Observation.value.ofType(integer)") == [
            NumberValue("value", Decimal(14))
        ]


class TestExtractIndexValues:
    def test_duplicates_are_removed(self) -> None:
        goal = {"resourceType": "Goal", "category": [{"text": "IPT"}, {"text": "ipt"}]}

        assert values_of(goal, "category") == [TokenValue("category", None, None, "ipt")]

    def test_only_the_parts_of_the_type_are_compiled(self) -> None:
        compiled = {c.parameter.code: c for c in compiled_parameters("CarePlan")}

        assert [p.expression for p in compiled["date"].parts] == ["CarePlan.period"]

    def test_unserved_type_raises_key_error(self) -> None:
        with pytest.raises(KeyError):
            extract_index_values({"resourceType": "AllergyIntolerance"})

    @pytest.mark.parametrize("resource_type", sorted(served_types()))
    def test_plain_paths_agree_with_fhirpathpy(self, resource_type: str) -> None:
        resource = SAMPLES.get(resource_type, {"resourceType": resource_type, "id": "x"})

        fast = extract_with(compiled_parameters(resource_type), resource, base_url=BASE)
        slow = extract_with(compiled_parameters(resource_type, plain_paths=False), resource, base_url=BASE)

        assert fast == slow


SAMPLES: dict[str, dict[str, Any]] = {
    "Patient": {
        "resourceType": "Patient",
        "id": "p1",
        "meta": {"lastUpdated": "2024-05-01T10:00:00Z", "tag": [{"code": "t"}], "profile": ["urn:p"]},
        "identifier": [{"system": "urn:mrn", "value": "1"}],
        "name": [{"family": "Müller", "given": ["Anna"]}],
        "telecom": [{"system": "email", "value": "a@b.org"}],
        "gender": "female",
        "_gender": {"extension": [{"url": "urn:x", "valueString": "y"}]},
        "birthDate": "1980-07-01",
    },
    "CarePlan": {
        "resourceType": "CarePlan",
        "id": "cp1",
        "status": "active",
        "intent": "plan",
        "category": [{"coding": [{"system": "urn:ipt", "code": "ipt"}], "text": "IPT"}],
        "subject": {"reference": "Patient/p1"},
        "period": {"start": "2024-01-15"},
        "careTeam": [{"reference": "CareTeam/t1"}],
        "goal": [{"reference": "Goal/g1"}],
        "addresses": [{"reference": "Condition/c1"}],
        "instantiatesCanonical": ["http://ipt.example.org/PlanDefinition/ipt|1.0"],
        "basedOn": [{"reference": f"{BASE}/CarePlan/cp0"}],
        "activity": [{"detail": {"status": "scheduled", "code": {"coding": [{"code": "s1"}]}}}],
    },
    "QuestionnaireResponse": {
        "resourceType": "QuestionnaireResponse",
        "id": "qr1",
        "status": "completed",
        "questionnaire": "http://ipt.example.org/Questionnaire/inventory|2.1",
        "subject": {"reference": "Patient/p1"},
        "author": {"reference": "Practitioner/t1"},
        "source": {"reference": "RelatedPerson/r1"},
        "authored": "2024-05-01T10:00:00+02:00",
        "identifier": {"system": "urn:qr", "value": "1"},
    },
    "Questionnaire": {
        "resourceType": "Questionnaire",
        "url": "http://ipt.example.org/Questionnaire/inventory",
        "version": "2.1",
        "name": "Inventory",
        "title": "Interpersonal inventory",
        "status": "active",
        "date": "2024-01",
        "publisher": "IPT",
        "item": [{"linkId": "1", "type": "string", "code": [{"code": "c"}]}],
    },
    "CareTeam": {
        "resourceType": "CareTeam",
        "status": "active",
        "subject": {"reference": "Patient/p1"},
        "participant": [{"member": {"reference": "Practitioner/t1"}}],
        "period": {"start": "2024-01", "end": "2024-06"},
    },
    "Goal": {
        "resourceType": "Goal",
        "lifecycleStatus": "active",
        "achievementStatus": {"coding": [{"code": "improving"}]},
        "subject": {"reference": "Group/g1"},
        "target": [{"dueDate": "2024-03-01"}],
    },
}
