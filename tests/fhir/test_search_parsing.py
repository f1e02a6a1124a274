"""Parsing a FHIR search query into a typed `SearchQuery`, and rendering it back for the links.

Spec: https://hl7.org/fhir/R4/search.html: #ptypes (token, string, reference, date, uri, number, quantity),
#prefix (date and number prefixes and precision), #modifiers (`:missing`, `:not`, `:text`, `:exact`,
`:contains`, `:below`, type modifier), #combining (comma = OR, repetition = AND), #escaping, #chaining,
#has, #return (`_sort`, `_count`, `_total`, `_include`/`_revinclude`, `_summary`, `_elements`), #errors
(lenient and strict handling, the self link leaves ignored parameters out).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from service.errors import InvalidSearch
from service.fhir.search import (
    ChainClause,
    DateSearch,
    HasClause,
    NumberSearch,
    ParameterClause,
    ReferenceSearch,
    SearchQuery,
    StringSearch,
    TokenSearch,
    UriSearch,
    parse_search,
    render_query,
)
from service.fhir.search_parameters import parameters_for

BASE = "https://ipt.example.org/fhir"
NOW = datetime(2025, 1, 1, tzinfo=UTC)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def parse(resource_type: str, *pairs: tuple[str, str], **options: object) -> SearchQuery:
    return parse_search(resource_type, list(pairs), base_url=BASE, now=NOW, **options)  # type: ignore[arg-type]


def clause(resource_type: str, name: str, value: str) -> ParameterClause:
    result = parse(resource_type, (name, value)).clauses[0]
    assert isinstance(result, ParameterClause)
    return result


def rejected(resource_type: str, name: str, value: str, **options: object) -> InvalidSearch:
    with pytest.raises(InvalidSearch) as info:
        parse(resource_type, (name, value), **options)
    issue = info.value.issues[0]
    assert issue.expression == name
    assert f"'{name}'" in issue.diagnostics
    assert info.value.status_code == 400
    return info.value


class TestCombining:
    def test_comma_means_or(self) -> None:
        assert clause("CarePlan", "status", "active,completed").values == (
            TokenSearch("active"),
            TokenSearch("completed"),
        )

    def test_repetition_means_and(self) -> None:
        query = parse("CarePlan", ("category", "a"), ("category", "b"))

        assert [c.values for c in query.clauses if isinstance(c, ParameterClause)] == [
            (TokenSearch("a"),),
            (TokenSearch("b"),),
        ]

    def test_escaped_comma_is_part_of_the_value(self) -> None:
        assert clause("Patient", "name", r"Smith\,John").values == (StringSearch("Smith,John", "smith,john"),)

    def test_escaped_bar_is_part_of_the_code(self) -> None:
        assert clause("Patient", "identifier", r"urn:x|a\|b").values == (TokenSearch("a|b", "urn:x", True),)

    def test_empty_value_is_ignored(self) -> None:
        assert parse("Patient", ("name", "")).clauses == ()

    def test_empty_alternative_is_rejected(self) -> None:
        rejected("CarePlan", "status", "active,")


class TestTokenValues:
    def test_code_matches_any_system(self) -> None:
        assert clause("Patient", "gender", "female").values == (TokenSearch("female"),)

    def test_system_and_code(self) -> None:
        assert clause("Condition", "code", "http://snomed.info/sct|35489007").values == (
            TokenSearch("35489007", "http://snomed.info/sct", match_system=True),
        )

    def test_code_without_system(self) -> None:
        assert clause("Condition", "code", "|35489007").values == (
            TokenSearch("35489007", None, match_system=True),
        )

    def test_any_code_of_a_system(self) -> None:
        assert clause("Condition", "code", "http://snomed.info/sct|").values == (
            TokenSearch(None, "http://snomed.info/sct", match_system=True),
        )

    def test_bar_alone_is_rejected(self) -> None:
        rejected("Condition", "code", "|")

    def test_not_modifier(self) -> None:
        result = clause("CarePlan", "status", "completed")
        negated = clause("CarePlan", "status:not", "completed")

        assert (negated.modifier, negated.values) == ("not", result.values)

    def test_text_modifier_searches_normalised_text(self) -> None:
        result = clause("Condition", "code:text", "Dépression")

        assert (result.modifier, result.values) == ("text", (StringSearch("Dépression", "depression"),))

    def test_id_is_a_token(self) -> None:
        assert clause("Goal", "_id", "g1,g2").values == (TokenSearch("g1"), TokenSearch("g2"))

    def test_unsupported_modifier_is_reported(self) -> None:
        query = parse("Condition", ("code:in", "http://ipt.example.org/ValueSet/areas"))

        assert query.clauses == ()
        assert [u.name for u in query.unknown] == ["code:in"]


class TestStringValues:
    def test_default_is_normalised_starts_with(self) -> None:
        result = clause("Patient", "name", "MÜLLER")

        assert (result.modifier, result.values) == (None, (StringSearch("MÜLLER", "muller"),))

    def test_exact_keeps_the_value_as_written(self) -> None:
        result = clause("Patient", "family", "Müller")

        assert clause("Patient", "family:exact", "Müller").values == result.values
        assert clause("Patient", "family:exact", "Müller").modifier == "exact"

    def test_contains(self) -> None:
        assert clause("Questionnaire", "title:contains", "inventory").modifier == "contains"

    def test_blank_value_is_rejected(self) -> None:
        rejected("Patient", "name", " ")


class TestReferenceValues:
    def test_id_of_the_only_target_type(self) -> None:
        assert clause("PractitionerRole", "practitioner", "t1").values == (
            ReferenceSearch("Practitioner", "t1"),
        )

    def test_id_of_several_target_types(self) -> None:
        assert clause("CarePlan", "subject", "p1").values == (ReferenceSearch(None, "p1"),)

    def test_type_and_id(self) -> None:
        assert clause("CarePlan", "subject", "Patient/p1").values == (ReferenceSearch("Patient", "p1"),)

    def test_version_of_a_reference_is_dropped(self) -> None:
        assert clause("CarePlan", "subject", "Patient/p1/_history/2").values == (
            ReferenceSearch("Patient", "p1"),
        )

    def test_type_modifier(self) -> None:
        result = clause("CarePlan", "subject:Patient", "p1")

        assert (result.modifier, result.values) == ("Patient", (ReferenceSearch("Patient", "p1"),))

    def test_type_modifier_must_be_a_target(self) -> None:
        rejected("CarePlan", "subject:Practitioner", "t1")

    def test_type_modifier_must_agree_with_the_value(self) -> None:
        rejected("CarePlan", "subject:Patient", "Group/g1")

    def test_type_must_be_a_target(self) -> None:
        rejected("CarePlan", "subject", "Practitioner/t1")

    def test_absolute_url_of_this_server_is_local(self) -> None:
        assert clause("CarePlan", "subject", f"{BASE}/Patient/p1").values == (
            ReferenceSearch("Patient", "p1"),
        )

    def test_absolute_url_elsewhere_is_matched_as_url(self) -> None:
        url = "https://other.org/fhir/Patient/p1"

        assert clause("CarePlan", "subject", url).values == (ReferenceSearch("Patient", "p1", url=url),)

    def test_canonical_with_version(self) -> None:
        assert clause(
            "QuestionnaireResponse", "questionnaire", "http://ipt.example.org/Questionnaire/q|2.1"
        ).values == (
            ReferenceSearch(None, None, url="http://ipt.example.org/Questionnaire/q", version="2.1"),
        )

    def test_canonical_by_id_of_the_only_target_type(self) -> None:
        # The SQL side resolves it through the Questionnaire's url.
        assert clause("QuestionnaireResponse", "questionnaire", "q1").values == (
            ReferenceSearch("Questionnaire", "q1"),
        )

    def test_canonical_without_version(self) -> None:
        assert clause(
            "CarePlan", "instantiates-canonical", "http://ipt.example.org/PlanDefinition/ipt"
        ).values == (ReferenceSearch(None, None, url="http://ipt.example.org/PlanDefinition/ipt"),)

    def test_malformed_id_is_rejected(self) -> None:
        rejected("CarePlan", "subject", "p 1")

    def test_malformed_relative_reference_is_rejected(self) -> None:
        rejected("CarePlan", "subject", "Patient/p1/extra")

    def test_identifier_modifier_is_reported(self) -> None:
        assert [u.name for u in parse("CarePlan", ("subject:identifier", "urn:mrn|1")).unknown] == [
            "subject:identifier"
        ]


class TestDateValues:
    def test_no_prefix_means_eq(self) -> None:
        assert clause("Patient", "birthdate", "1980").values == (
            DateSearch("eq", utc(1980, 1, 1), utc(1981, 1, 1)),
        )

    @pytest.mark.parametrize("prefix", ["eq", "ne", "gt", "lt", "ge", "le", "sa", "eb"])
    def test_prefix(self, prefix: str) -> None:
        assert clause("CarePlan", "date", f"{prefix}2024-05-01").values == (
            DateSearch(prefix, utc(2024, 5, 1), utc(2024, 5, 2)),  # type: ignore[arg-type]
        )

    def test_ap_widens_by_a_tenth_of_the_distance_to_now(self) -> None:
        (value,) = clause("CarePlan", "date", "ap2015-01-01").values

        assert value == DateSearch("ap", utc(2015, 1, 1), utc(2015, 1, 2), (NOW - utc(2015, 1, 2)) / 10)

    def test_ap_widens_by_at_least_a_day(self) -> None:
        (value,) = clause("CarePlan", "date", "ap2024-12-31T12:00:00Z").values

        assert isinstance(value, DateSearch)
        assert value.margin == timedelta(days=1)

    def test_instant_with_timezone(self) -> None:
        assert clause("Goal", "_lastUpdated", "gt2024-05-01T10:00:00.5+02:00").values == (
            DateSearch("gt", utc(2024, 5, 1, 8, 0, 0, 500000), utc(2024, 5, 1, 8, 0, 0, 600000)),
        )

    def test_unknown_prefix_is_rejected(self) -> None:
        error = rejected("CarePlan", "date", "xx2024")

        assert "prefix" in error.issues[0].diagnostics

    def test_malformed_date_is_rejected(self) -> None:
        error = rejected("Patient", "birthdate", "2024-02-30")

        assert "2024-02-30" in error.issues[0].diagnostics

    def test_prefix_without_date_is_rejected(self) -> None:
        rejected("QuestionnaireResponse", "authored", "ge")


def date(prefix: str, value: str) -> DateSearch:
    result = clause("CarePlan", "date", f"{prefix}{value}").values[0]
    assert isinstance(result, DateSearch)
    return result


class TestDateMatching:
    """The prefix rules on ranges (https://hl7.org/fhir/R4/search.html#prefix), search value 2024-05."""

    def test_eq_matches_a_target_inside_the_search_range(self) -> None:
        assert date("eq", "2024-05").matches(utc(2024, 5, 10), utc(2024, 5, 11))

    def test_eq_does_not_match_a_target_overlapping_the_edge(self) -> None:
        assert not date("eq", "2024-05").matches(utc(2024, 4, 30), utc(2024, 5, 2))

    def test_eq_does_not_match_a_wider_target(self) -> None:
        assert not date("eq", "2024-05-10").matches(utc(2024, 5, 1), utc(2024, 6, 1))

    def test_ne_matches_what_eq_does_not(self) -> None:
        assert date("ne", "2024-05").matches(utc(2024, 4, 30), utc(2024, 5, 2))
        assert not date("ne", "2024-05").matches(utc(2024, 5, 10), utc(2024, 5, 11))

    def test_gt_matches_a_target_reaching_beyond_the_range(self) -> None:
        assert date("gt", "2024-05").matches(utc(2024, 5, 31), utc(2024, 6, 2))
        assert not date("gt", "2024-05").matches(utc(2024, 5, 31), utc(2024, 6, 1))

    def test_lt_matches_a_target_starting_before_the_range(self) -> None:
        assert date("lt", "2024-05").matches(utc(2024, 4, 30), utc(2024, 5, 2))
        assert not date("lt", "2024-05").matches(utc(2024, 5, 1), utc(2024, 5, 2))

    def test_ge_is_gt_or_eq(self) -> None:
        assert date("ge", "2024-05").matches(utc(2024, 5, 1), utc(2024, 5, 2))
        assert date("ge", "2024-05").matches(utc(2024, 7, 1), utc(2024, 7, 2))
        assert not date("ge", "2024-05").matches(utc(2024, 4, 1), utc(2024, 4, 2))

    def test_le_is_lt_or_eq(self) -> None:
        assert date("le", "2024-05").matches(utc(2024, 5, 31), utc(2024, 6, 1))
        assert date("le", "2024-05").matches(utc(2024, 1, 1), utc(2024, 1, 2))
        assert not date("le", "2024-05").matches(utc(2024, 6, 1), utc(2024, 6, 2))

    def test_sa_matches_a_target_wholly_after(self) -> None:
        assert date("sa", "2024-05").matches(utc(2024, 6, 1), utc(2024, 6, 2))
        assert not date("sa", "2024-05").matches(utc(2024, 5, 31), utc(2024, 6, 2))

    def test_eb_matches_a_target_wholly_before(self) -> None:
        assert date("eb", "2024-05").matches(utc(2024, 4, 30), utc(2024, 5, 1))
        assert not date("eb", "2024-05").matches(utc(2024, 4, 30), utc(2024, 5, 2))

    def test_ap_matches_a_target_within_the_margin(self) -> None:
        # 2024-05 is 7 months before NOW: the margin is about 21 days.
        assert date("ap", "2024-05").matches(utc(2024, 6, 15), utc(2024, 6, 16))
        assert not date("ap", "2024-05").matches(utc(2024, 7, 15), utc(2024, 7, 16))

    def test_open_ended_period_is_after_any_date(self) -> None:
        assert date("gt", "2030").matches(utc(2024, 1, 1), None)
        assert not date("eq", "2024").matches(utc(2024, 1, 1), None)

    def test_period_without_start_is_before_any_date(self) -> None:
        assert date("lt", "1900").matches(None, utc(2024, 1, 1))

    def test_day_search_matches_an_instant_of_that_day_in_utc(self) -> None:
        authored_low, authored_high = utc(2024, 5, 1, 23, 30), utc(2024, 5, 1, 23, 30, 1)

        assert date("eq", "2024-05-01").matches(authored_low, authored_high)
        assert not date("eq", "2024-05-02").matches(authored_low, authored_high)


class TestNumberValues:
    def test_implied_precision_range(self) -> None:
        assert NumberSearch("eq", Decimal(100), Decimal("99.5"), Decimal("100.5")) == _number("100")

    def test_precision_of_decimals(self) -> None:
        assert (_number("0.10").low, _number("0.10").high) == (Decimal("0.095"), Decimal("0.105"))

    def test_eq_uses_the_implied_range(self) -> None:
        assert _number("100").matches(Decimal("100.4"))
        assert not _number("100").matches(Decimal("100.5"))

    def test_prefixes_compare_with_the_value(self) -> None:
        assert _number("gt100").matches(Decimal("100.1"))
        assert _number("le100").matches(Decimal(100))
        assert not _number("lt100").matches(Decimal(100))

    def test_ap_is_within_ten_percent(self) -> None:
        assert _number("ap100").matches(Decimal(109))
        assert not _number("ap100").matches(Decimal(111))

    def test_quantity_with_system_and_code(self) -> None:
        assert _number("le5.4|http://unitsofmeasure.org|mg", quantity=True) == NumberSearch(
            "le",
            Decimal("5.4"),
            Decimal("5.35"),
            Decimal("5.45"),
            "http://unitsofmeasure.org",
            "mg",
        )

    def test_not_a_number_is_rejected(self) -> None:
        with pytest.raises(ValueError, match="not a number"):
            _number("1x5")


def _number(raw: str, *, quantity: bool = False) -> NumberSearch:
    # No served parameter is a number or quantity yet, so the value parser is tested directly.
    from service.fhir.search import _Malformed, _number

    try:
        return _number(raw, quantity=quantity)
    except _Malformed as error:
        raise ValueError(str(error)) from None


class TestUriValues:
    def test_exact(self) -> None:
        result = clause("ValueSet", "url", "http://ipt.example.org/ValueSet/areas")

        assert (result.modifier, result.values) == (
            None,
            (UriSearch("http://ipt.example.org/ValueSet/areas"),),
        )

    def test_below(self) -> None:
        assert clause("CodeSystem", "url:below", "http://ipt.example.org/").modifier == "below"

    def test_above_is_reported(self) -> None:
        assert [u.name for u in parse("CodeSystem", ("url:above", "http://ipt.example.org/a/b")).unknown] == [
            "url:above"
        ]


class TestMissing:
    @pytest.mark.parametrize(
        ("resource_type", "code"),
        [
            ("Patient", "gender"),
            ("Patient", "name"),
            ("CarePlan", "subject"),
            ("CarePlan", "date"),
            ("ValueSet", "url"),
            ("Goal", "_tag"),
        ],
    )
    def test_on_every_parameter_type(self, resource_type: str, code: str) -> None:
        result = clause(resource_type, f"{code}:missing", "true")

        assert (result.modifier, result.missing, result.values) == ("missing", True, ())

    def test_false_requires_a_value(self) -> None:
        assert clause("Patient", "birthdate:missing", "false").missing is False

    def test_other_value_is_rejected(self) -> None:
        rejected("Patient", "birthdate:missing", "yes")


class TestChains:
    def test_chain_through_a_type_modifier(self) -> None:
        (result,) = parse("QuestionnaireResponse", ("subject:Patient.identifier", "urn:mrn|123")).clauses

        assert isinstance(result, ChainClause)
        assert (result.parameter.code, result.target_types) == ("subject", ("Patient",))
        assert (result.clause.parameter.code, result.clause.values) == (
            "identifier",
            (TokenSearch("123", "urn:mrn", match_system=True),),
        )

    def test_chain_to_the_served_targets_that_have_the_parameter(self) -> None:
        (result,) = parse("CarePlan", ("subject.name", "peter")).clauses

        assert isinstance(result, ChainClause)
        assert result.target_types == ("Patient",)
        assert result.clause.values == (StringSearch("peter", "peter"),)

    def test_chain_to_several_target_types(self) -> None:
        (result,) = parse("CareTeam", ("participant.name", "weissman")).clauses

        assert isinstance(result, ChainClause)
        assert result.target_types == ("Patient", "Practitioner", "RelatedPerson")

    def test_chained_parameter_takes_modifiers(self) -> None:
        (result,) = parse("CarePlan", ("subject.gender:not", "male")).clauses

        assert isinstance(result, ChainClause)
        assert result.clause.modifier == "not"

    def test_chain_on_a_non_reference_is_rejected(self) -> None:
        rejected("CarePlan", "status.name", "x")

    def test_chain_with_a_type_that_is_not_a_target_is_rejected(self) -> None:
        rejected("CarePlan", "subject:Practitioner.name", "x")

    def test_chain_to_an_unknown_parameter_is_reported(self) -> None:
        assert [u.name for u in parse("CarePlan", ("subject.shoe-size", "42")).unknown] == [
            "subject.shoe-size"
        ]

    def test_chain_of_two_levels_is_reported(self) -> None:
        query = parse("QuestionnaireResponse", ("based-on.subject.name", "peter"))

        assert query.clauses == ()
        assert "one level" in query.unknown[0].reason

    def test_malformed_chained_value_is_rejected(self) -> None:
        rejected("CarePlan", "subject.birthdate", "not-a-date")


class TestHas:
    def test_reverse_chain(self) -> None:
        (result,) = parse("Patient", ("_has:CarePlan:subject:status", "active")).clauses

        assert isinstance(result, HasClause)
        assert (result.source_type, result.reference.code, result.clause.parameter.code) == (
            "CarePlan",
            "subject",
            "status",
        )
        assert result.clause.values == (TokenSearch("active"),)

    def test_reverse_chain_with_a_modifier(self) -> None:
        (result,) = parse("Patient", ("_has:Goal:patient:lifecycle-status:not", "cancelled")).clauses

        assert isinstance(result, HasClause)
        assert result.clause.modifier == "not"

    def test_reference_that_does_not_point_here_is_rejected(self) -> None:
        rejected("Practitioner", "_has:CarePlan:subject:status", "active")

    def test_unserved_source_type_is_reported(self) -> None:
        assert [u.name for u in parse("Patient", ("_has:Encounter:patient:status", "x")).unknown] == [
            "_has:Encounter:patient:status"
        ]

    def test_nested_has_is_reported(self) -> None:
        name = "_has:CarePlan:subject:_has:Goal:patient:status"

        assert "nested" in parse("Patient", (name, "x")).unknown[0].reason

    def test_incomplete_has_is_rejected(self) -> None:
        rejected("Patient", "_has:CarePlan:subject", "active")

    def test_malformed_value_is_rejected(self) -> None:
        rejected("Patient", "_has:CarePlan:subject:date", "2024-99")


class TestCount:
    def test_default(self) -> None:
        assert parse("Patient").count == 20

    def test_given(self) -> None:
        assert parse("Patient", ("_count", "5")).count == 5

    def test_clamped_to_the_maximum(self) -> None:
        assert parse("Patient", ("_count", "100000")).count == 500

    def test_configured_maximum(self) -> None:
        assert parse("Patient", ("_count", "80"), max_count=50, default_count=10).count == 50

    def test_zero_is_allowed(self) -> None:
        assert parse("Patient", ("_count", "0")).count == 0

    @pytest.mark.parametrize("value", ["-1", "ten", "2.5"])
    def test_malformed_is_rejected(self, value: str) -> None:
        rejected("Patient", "_count", value)


class TestTotal:
    @pytest.mark.parametrize("value", ["none", "estimate", "accurate"])
    def test_valid(self, value: str) -> None:
        assert parse("Patient", ("_total", value)).total == value

    def test_invalid_is_rejected(self) -> None:
        rejected("Patient", "_total", "all")


class TestSummary:
    @pytest.mark.parametrize("value", ["true", "false", "data", "count"])
    def test_valid(self, value: str) -> None:
        assert parse("Patient", ("_summary", value)).summary == value

    def test_text_is_reported(self) -> None:
        query = parse("Patient", ("_summary", "text"))

        assert (query.summary, [u.name for u in query.unknown]) == (None, ["_summary"])

    def test_invalid_is_rejected(self) -> None:
        rejected("Patient", "_summary", "maybe")


class TestElements:
    def test_comma_separated_and_repeated(self) -> None:
        assert parse("Patient", ("_elements", "name,gender"), ("_elements", "birthDate,name")).elements == (
            "name",
            "gender",
            "birthDate",
        )

    def test_malformed_is_rejected(self) -> None:
        rejected("Patient", "_elements", "name,")


class TestSort:
    def test_several_keys_with_direction(self) -> None:
        query = parse("CarePlan", ("_sort", "-date,status,_id"))

        assert [(k.parameter.code, k.descending) for k in query.sort] == [
            ("date", True),
            ("status", False),
            ("_id", False),
        ]

    def test_last_updated_and_string(self) -> None:
        query = parse("Patient", ("_sort", "-_lastUpdated,family"))

        assert [(k.parameter.code, k.descending) for k in query.sort] == [
            ("_lastUpdated", True),
            ("family", False),
        ]

    def test_reference_key_is_reported_and_the_others_kept(self) -> None:
        query = parse("CarePlan", ("_sort", "subject,-date"))

        assert [k.parameter.code for k in query.sort] == ["date"]
        assert query.unknown[0].reason == "cannot sort on subject"

    def test_unknown_key_is_rejected_in_strict_mode(self) -> None:
        rejected("CarePlan", "_sort", "shoe-size", strict=True)

    def test_empty_key_is_rejected(self) -> None:
        rejected("CarePlan", "_sort", "date,,status")


class TestInclude:
    def test_include(self) -> None:
        (include,) = parse("CarePlan", ("_include", "CarePlan:subject")).includes

        assert (include.source_type, include.parameter and include.parameter.code, include.target_type) == (
            "CarePlan",
            "subject",
            None,
        )

    def test_include_with_target_type(self) -> None:
        assert (
            parse("CarePlan", ("_include", "CarePlan:subject:Patient")).includes[0].target_type == "Patient"
        )

    def test_include_target_type_must_be_a_target(self) -> None:
        rejected("CarePlan", "_include", "CarePlan:subject:Practitioner")

    def test_wildcard(self) -> None:
        (include,) = parse("CarePlan", ("_include", "*")).includes

        assert (include.source_type, include.parameter) == ("CarePlan", None)

    def test_wildcard_of_a_type(self) -> None:
        assert parse("CarePlan", ("_include", "CarePlan:*")).includes[0].parameter is None

    def test_iterate(self) -> None:
        query = parse(
            "QuestionnaireResponse",
            ("_include", "QuestionnaireResponse:based-on"),
            ("_include:iterate", "CarePlan:goal"),
        )

        assert [(i.source_type, i.iterate) for i in query.includes] == [
            ("QuestionnaireResponse", False),
            ("CarePlan", True),
        ]

    def test_recurse_is_iterate(self) -> None:
        query = parse("CarePlan", ("_include:recurse", "CarePlan:part-of"))

        assert query.includes[0].iterate
        assert render_query(query) == "_include:iterate=CarePlan:part-of"

    def test_other_type_without_iterate_is_reported(self) -> None:
        assert [u.name for u in parse("CarePlan", ("_include", "Goal:subject")).unknown] == ["_include"]

    def test_non_reference_parameter_is_rejected(self) -> None:
        rejected("CarePlan", "_include", "CarePlan:status")

    def test_malformed_is_rejected(self) -> None:
        rejected("CarePlan", "_include", "CarePlan")

    def test_revinclude(self) -> None:
        (include,) = parse("Patient", ("_revinclude", "CarePlan:subject")).revincludes

        assert (include.source_type, include.parameter and include.parameter.code) == ("CarePlan", "subject")

    def test_revinclude_wildcard_is_of_any_type(self) -> None:
        (include,) = parse("Patient", ("_revinclude", "*")).revincludes

        assert (include.source_type, include.parameter) == (None, None)

    def test_revinclude_must_point_here(self) -> None:
        rejected("Patient", "_revinclude", "CarePlan:goal")

    def test_revinclude_iterate_may_point_elsewhere(self) -> None:
        assert parse("Patient", ("_revinclude:iterate", "Goal:subject")).revincludes[0].iterate


class TestUnknownParameters:
    def test_are_ignored_and_reported(self) -> None:
        query = parse("Patient", ("shoe-size", "42"), ("name", "anna"))

        assert len(query.clauses) == 1
        (warning,) = query.warnings()
        assert (warning.severity, warning.code, warning.expression) == (
            "warning",
            "not-supported",
            "shoe-size",
        )

    def test_are_rejected_in_strict_mode(self) -> None:
        error = rejected("Patient", "shoe-size", "42", strict=True)

        assert error.issues[0].code == "not-supported"

    def test_unsupported_common_parameter_is_reported(self) -> None:
        assert [u.name for u in parse("Patient", ("_text", "anna")).unknown] == ["_text"]

    def test_parameter_of_another_type_is_reported(self) -> None:
        assert [u.name for u in parse("Patient", ("intent", "plan")).unknown] == ["intent"]

    def test_format_is_left_to_the_http_layer(self) -> None:
        query = parse("Patient", ("_format", "json"), ("_pretty", "true"))

        assert (query.clauses, query.unknown, query.normalized) == ((), (), ())

    def test_malformed_values_are_rejected_even_when_lenient(self) -> None:
        rejected("Patient", "birthdate", "yesterday")

    def test_unserved_resource_type_raises_key_error(self) -> None:
        with pytest.raises(KeyError):
            parse_search("Encounter", [])


class TestRenderQuery:
    def test_keeps_the_accepted_parameters_in_order(self) -> None:
        query = parse(
            "CarePlan",
            ("subject", "Patient/p1"),
            ("shoe-size", "42"),
            ("date", "ge2024"),
            ("status", "active,completed"),
        )

        assert render_query(query) == "subject=Patient/p1&date=ge2024&status=active,completed"

    def test_result_parameters_follow_normalised(self) -> None:
        query = parse(
            "CarePlan",
            ("_revinclude", "QuestionnaireResponse:based-on"),
            ("_count", "9999"),
            ("_sort", "-date,subject"),
            ("_include", "CarePlan:goal"),
            ("_total", "accurate"),
            ("_summary", "data"),
            ("_elements", "status"),
            ("intent", "plan"),
        )

        assert render_query(query) == (
            "intent=plan&_sort=-date&_count=500&_total=accurate&_summary=data&_elements=status"
            "&_include=CarePlan:goal&_revinclude=QuestionnaireResponse:based-on"
        )

    def test_encodes_reserved_characters(self) -> None:
        query = parse("Patient", ("name", "Anna Maria&Co"), ("email", "a+b@x.org"))

        assert render_query(query) == "name=Anna%20Maria%26Co&email=a%2Bb%40x.org"

    def test_keeps_escapes(self) -> None:
        assert render_query(parse("Patient", ("name", r"Smith\,John"))) == "name=Smith%5C,John"

    def test_appends_the_cursor(self) -> None:
        query = parse("Patient", ("gender", "female"), ("_cursor", "abc"))

        assert query.cursor == "abc"
        assert render_query(query, cursor="def") == "gender=female&_cursor=def"

    def test_round_trips(self) -> None:
        query = parse("Patient", ("_has:CarePlan:subject:status", "active"), ("birthdate", "lt1990"))
        pairs = [tuple(pair.split("=", 1)) for pair in render_query(query).split("&")]

        assert parse("Patient", *pairs).clauses == query.clauses  # type: ignore[arg-type]


class TestParametersOfEveryType:
    @pytest.mark.parametrize(
        ("resource_type", "code"),
        [
            (t, c)
            for t in ("Patient", "CarePlan", "QuestionnaireResponse", "Questionnaire")
            for c in parameters_for(t)
        ],
    )
    def test_every_parameter_accepts_missing(self, resource_type: str, code: str) -> None:
        assert clause(resource_type, f"{code}:missing", "true").parameter.code == code
