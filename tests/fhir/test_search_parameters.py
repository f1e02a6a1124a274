"""The search parameter registry: the FHIR R4 (4.0.1) definitions of the supported parameters.

Spec: https://hl7.org/fhir/R4/searchparameter-registry.html, https://hl7.org/fhir/R4/search.html#all
"""

from __future__ import annotations

from typing import get_args

import pytest

from service.fhir.search_parameters import (
    ParameterType,
    all_parameters,
    parameters_for,
    served_types,
)

COMMON = {"_id", "_lastUpdated", "_tag", "_profile", "_security"}
CONTENT = {"url", "version", "name", "title", "status", "date", "publisher", "identifier"}

EXPECTED: dict[str, set[str]] = {
    "Patient": {"identifier", "name", "family", "given", "birthdate", "gender", "telecom", "email", "phone"},
    "Practitioner": {"identifier", "name", "family", "given"},
    "PractitionerRole": {"identifier", "practitioner", "role", "specialty"},
    "RelatedPerson": {"identifier", "patient", "name", "relationship"},
    "CareTeam": {"identifier", "patient", "subject", "participant", "status", "category", "date"},
    "Condition": {
        "identifier",
        "patient",
        "subject",
        "code",
        "clinical-status",
        "verification-status",
        "category",
        "onset-date",
    },
    "Goal": {
        "identifier",
        "patient",
        "subject",
        "lifecycle-status",
        "achievement-status",
        "category",
        "target-date",
    },
    "CarePlan": {
        "identifier",
        "patient",
        "subject",
        "status",
        "intent",
        "category",
        "care-team",
        "goal",
        "condition",
        "date",
        "instantiates-canonical",
        "based-on",
        "part-of",
        "activity-code",
    },
    "QuestionnaireResponse": {
        "identifier",
        "questionnaire",
        "subject",
        "patient",
        "author",
        "status",
        "authored",
        "based-on",
        "part-of",
        "source",
    },
    "Questionnaire": CONTENT | {"code", "questionnaire-code"},
    "PlanDefinition": CONTENT,
    "ActivityDefinition": CONTENT,
    "CodeSystem": CONTENT,
    "ValueSet": CONTENT,
    "Observation": {"identifier", "patient", "subject", "code", "date", "status", "derived-from"},
    "AuditEvent": {
        "action",
        "address",
        "agent",
        "altid",
        "date",
        "entity",
        "outcome",
        "patient",
        "subtype",
        "type",
    },
}


class TestServedTypes:
    def test_are_the_served_types_observation_and_audit_event(self) -> None:
        assert served_types() == set(EXPECTED)


class TestParametersFor:
    @pytest.mark.parametrize("resource_type", sorted(EXPECTED))
    def test_lists_exactly_the_supported_parameters(self, resource_type: str) -> None:
        assert set(parameters_for(resource_type)) == EXPECTED[resource_type] | COMMON

    def test_common_parameters_come_from_resource(self) -> None:
        parameter = parameters_for("Goal")["_lastUpdated"]

        assert (parameter.type, parameter.expression, parameter.bases) == (
            "date",
            "Resource.meta.lastUpdated",
            ("Resource",),
        )

    def test_parameter_carries_its_canonical_url(self) -> None:
        assert parameters_for("QuestionnaireResponse")["questionnaire"].url == (
            "http://hl7.org/fhir/SearchParameter/QuestionnaireResponse-questionnaire"
        )

    def test_reference_parameter_lists_its_targets(self) -> None:
        assert parameters_for("CarePlan")["subject"].targets == ("Group", "Patient")

    def test_shared_definition_keeps_the_whole_expression(self) -> None:
        parameter = parameters_for("CarePlan")["patient"]

        assert parameter.url == "http://hl7.org/fhir/SearchParameter/clinical-patient"
        assert "CarePlan.subject.where(resolve() is Patient)" in parameter.expression
        assert "Goal.subject.where(resolve() is Patient)" in parameter.expression

    def test_shared_definition_is_offered_only_where_selected(self) -> None:
        # individual-birthdate also has RelatedPerson as a base in the specification.
        assert "birthdate" in parameters_for("Patient")
        assert "birthdate" not in parameters_for("RelatedPerson")

    def test_role_is_the_code_element(self) -> None:
        assert parameters_for("PractitionerRole")["role"].expression == "PractitionerRole.code"

    def test_version_of_content_is_a_token(self) -> None:
        assert parameters_for("Questionnaire")["version"].type == "token"

    def test_mapping_is_read_only(self) -> None:
        with pytest.raises(TypeError):
            parameters_for("Patient")["x"] = parameters_for("Patient")["name"]  # type: ignore[index]

    def test_unserved_type_raises_key_error(self) -> None:
        with pytest.raises(KeyError):
            parameters_for("AllergyIntolerance")


class TestAllParameters:
    def test_every_type_is_a_supported_one(self) -> None:
        assert {p.type for p in all_parameters()} <= set(get_args(ParameterType))

    def test_every_definition_is_from_r4_or_sdc(self) -> None:
        published = ("http://hl7.org/fhir/SearchParameter/", "http://hl7.org/fhir/uv/sdc/SearchParameter/")
        assert all(p.url.startswith(published) for p in all_parameters())
        assert [p.code for p in all_parameters() if "/uv/sdc/" in p.url] == ["questionnaire-code"]

    def test_every_url_appears_once(self) -> None:
        urls = [p.url for p in all_parameters()]

        assert len(urls) == len(set(urls))

    def test_only_reference_parameters_have_targets(self) -> None:
        assert all(bool(p.targets) == (p.type == "reference") for p in all_parameters())
