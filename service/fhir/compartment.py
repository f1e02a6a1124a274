"""Keep a patient-context token inside its patient's compartment.

https://hl7.org/fhir/R4/compartmentdefinition-patient.html. Resources outside any patient compartment
(practitioners, shared content) are not confined. Storage applies these rules to every read and write, so
each path that reaches a resource (REST, transactions, conditional writes, PATCH, operations, the IPT API)
obeys them: a resource of another patient reads as not found, so a token cannot learn that it exists, and
writing one is refused.
"""

from __future__ import annotations

from typing import Any

from service.errors import Forbidden, Issue, NotFound
from service.fhir.access import compartment_restriction, confined_type
from service.fhir.registry import patient_compartment


def visible(resource_type: str, patient_id: str | None) -> bool:
    """May the current request see a resource of `resource_type` stored in `patient_id`'s compartment?"""
    patient = compartment_restriction()
    return patient is None or not confined_type(resource_type) or patient_id == patient


def ensure_visible(resource_type: str, resource_id: str, patient_id: str | None) -> None:
    if not visible(resource_type, patient_id):
        raise NotFound(Issue(f"{resource_type}/{resource_id} is not known", expression=resource_type))


def ensure_writable(resource_type: str, resource_id: str, content: dict[str, Any]) -> None:
    """Refuse (403) to write a resource into a compartment other than the token's patient's."""
    patient = compartment_restriction()
    if patient is None or not confined_type(resource_type):
        return
    if patient_compartment(resource_type, resource_id, content) != patient:
        raise Forbidden(
            Issue(
                f"this token may only write resources of Patient/{patient}",
                expression=f"{resource_type}.subject" if resource_type != "Patient" else "Patient.id",
            )
        )
