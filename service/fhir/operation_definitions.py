"""The FHIR operations this server answers: the endpoint table takes their entries from here.

https://hl7.org/fhir/R4/operations.html; each entry names the OperationDefinition it implements
(`CapabilityStatement.rest.resource.operation.definition`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class OperationSpec:
    """One operation; `resource_types` empty means every served type."""

    name: str
    definition: str
    documentation: str
    resource_types: tuple[str, ...] = ()
    # The methods it answers at `[type]/$name` and at `[type]/[id]/$name` (none: not at that level). An
    # operation that changes nothing may be invoked with GET as well (https://hl7.org/fhir/R4/operations.html).
    type_methods: tuple[str, ...] = ("POST",)
    instance_methods: tuple[str, ...] = ("POST",)

    def applies_to(self, resource_type: str) -> bool:
        return not self.resource_types or resource_type in self.resource_types


VALIDATE: Final = OperationSpec(
    "validate",
    "http://hl7.org/fhir/OperationDefinition/Resource-validate",
    "Checks a resource as a create, an update or a delete (mode) without storing anything; "
    "answers an OperationOutcome.",
)
POPULATE: Final = OperationSpec(
    "populate",
    "http://hl7.org/fhir/uv/sdc/OperationDefinition/Questionnaire-populate",
    "An in-progress QuestionnaireResponse for a patient (subject), pre-filled from the patient's latest "
    "response to the same worksheet; nothing is stored.",
    resource_types=("Questionnaire",),
)
EXTRACT: Final = OperationSpec(
    "extract",
    "http://hl7.org/fhir/uv/sdc/OperationDefinition/QuestionnaireResponse-extract",
    "The Observations a completed response yields (observation-based extraction, such as the PHQ-9 "
    "total score), as a transaction Bundle; nothing is stored.",
    resource_types=("QuestionnaireResponse",),
    instance_methods=("GET", "POST"),
)
APPLY: Final = OperationSpec(
    "apply",
    "http://hl7.org/fhir/OperationDefinition/PlanDefinition-apply",
    "A draft CarePlan (status draft, intent proposal) of the IPT protocol for subject, with the techniques "
    "and worksheets that suit the problem area given as focus; returned, not stored. Inputs: "
    "planDefinition (type level), subject, practitioner, focus, condition.",
    resource_types=("PlanDefinition",),
    type_methods=("POST", "GET"),
    instance_methods=("POST", "GET"),
)

OPERATIONS: Final[tuple[OperationSpec, ...]] = (VALIDATE, POPULATE, EXTRACT, APPLY)
