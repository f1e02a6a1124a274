"""Keep a patient-context token inside its patient's compartment.

https://hl7.org/fhir/R4/compartmentdefinition-patient.html. Resources outside any patient compartment
(practitioners, shared content) are not confined. A resource of another patient reads as not found, so a
token cannot learn that it exists; writing one is refused.
"""

from __future__ import annotations

from typing import Any

import orjson

from service.errors import Forbidden, Issue, NotFound
from service.fhir.access import compartment_restriction
from service.fhir.registry import RESOURCES, patient_compartment


def confined_type(resource_type: str) -> bool:
    spec = RESOURCES.get(resource_type)
    return resource_type == "Patient" or (spec is not None and bool(spec.compartment))


def visible(resource_type: str, resource_id: str, content: bytes | dict[str, Any] | None) -> bool:
    patient = compartment_restriction()
    if patient is None or not confined_type(resource_type):
        return True
    if resource_type == "Patient":
        return resource_id == patient
    if content is None:
        return False
    parsed = orjson.loads(content) if isinstance(content, bytes) else content
    return patient_compartment(resource_type, resource_id, parsed) == patient


def ensure_visible(resource_type: str, resource_id: str, content: bytes | dict[str, Any] | None) -> None:
    if not visible(resource_type, resource_id, content):
        raise NotFound(Issue(f"{resource_type}/{resource_id} is not known", expression=resource_type))


def ensure_writable(resource_type: str, resource_id: str | None, content: dict[str, Any]) -> None:
    patient = compartment_restriction()
    if patient is None or not confined_type(resource_type):
        return
    owner = (
        resource_id
        if resource_type == "Patient"
        else patient_compartment(resource_type, resource_id or "", content)
    )
    if owner != patient:
        raise Forbidden(
            Issue(
                f"this token may only write resources of Patient/{patient}",
                expression=f"{resource_type}.subject" if resource_type != "Patient" else "Patient.id",
            )
        )
