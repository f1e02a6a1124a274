"""Which patient's compartment a resource is in: https://hl7.org/fhir/R4/compartmentdefinition-patient.html

Read from the compartment elements' references by `mappings.references`, the reader that reference checks,
search indexes and the treatment-plan mapping share: only a relative `Patient/<id>` counts, and a malformed
reference puts a resource in no compartment (writes refuse it before it could be stored).
"""

from typing import Any

import pytest

from service.fhir.registry import patient_compartment


def plan(subject: Any) -> dict[str, Any]:
    return {"resourceType": "CarePlan", "subject": subject}


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ({"reference": "Patient/p1"}, "p1"),
        ({"reference": "Patient/p1/_history/3"}, "p1"),
        ({"reference": "Patient/p1/Patient/p2"}, None),
        ({"reference": "Patient/p1/extra"}, None),
        ({"reference": "Patient/"}, None),
        ({"reference": "Patient/p 1"}, None),
        ({"reference": "https://elsewhere.example/fhir/Patient/p1"}, None),
        ({"reference": "Group/g1"}, None),
        ({"reference": "#p1"}, None),
        ({"identifier": {"value": "p1"}}, None),
        (None, None),
    ],
)
def test_subject(subject: Any, expected: str | None) -> None:
    assert patient_compartment("CarePlan", "c1", plan(subject)) == expected


def test_a_patient_is_its_own_compartment() -> None:
    assert patient_compartment("Patient", "p1", {"resourceType": "Patient"}) == "p1"


def test_a_malformed_reference_does_not_let_the_next_element_decide() -> None:
    response = {
        "resourceType": "QuestionnaireResponse",
        "subject": {"reference": "Patient/p2/Patient/p1"},
        "author": {"reference": "Patient/p1"},
    }

    assert patient_compartment("QuestionnaireResponse", "r1", response) is None


def test_a_reference_to_another_type_lets_the_next_element_decide() -> None:
    response = {
        "resourceType": "QuestionnaireResponse",
        "subject": {"reference": "Practitioner/t1"},
        "author": {"reference": "Patient/p1"},
    }

    assert patient_compartment("QuestionnaireResponse", "r1", response) == "p1"
