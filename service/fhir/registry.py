"""The served resource types: one table drives the routes, storage, the CapabilityStatement and OpenAPI."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mappings.references import reference_of

Interaction = Literal["read", "vread", "update", "delete", "history-instance", "history-type", "create"]

ALL_INTERACTIONS: tuple[Interaction, ...] = (
    "read",
    "vread",
    "update",
    "delete",
    "history-instance",
    "history-type",
    "create",
)

Kind = Literal["clinical", "administrative", "content"]


@dataclass(frozen=True, slots=True)
class ResourceDefinition:
    """How one resource type is served.

    `compartment` names the element whose `Patient/<id>` reference puts a resource into that patient's
    compartment (`None` for a Patient itself, which is its own compartment, and for shared content).
    """

    name: str
    kind: Kind
    description: str
    compartment: tuple[str, ...] = ()
    interactions: tuple[Interaction, ...] = ALL_INTERACTIONS


RESOURCE_DEFINITIONS: tuple[ResourceDefinition, ...] = (
    ResourceDefinition("Patient", "administrative", "The client receiving IPT."),
    ResourceDefinition("Practitioner", "administrative", "A therapist, supervisor or prescriber."),
    ResourceDefinition("PractitionerRole", "administrative", "A practitioner's role and qualification."),
    ResourceDefinition(
        "RelatedPerson", "administrative", "A family member or support person.", compartment=("patient",)
    ),
    ResourceDefinition("CareTeam", "clinical", "The people caring for the client.", compartment=("subject",)),
    ResourceDefinition(
        "Condition", "clinical", "The diagnosis the plan addresses.", compartment=("subject",)
    ),
    ResourceDefinition("Goal", "clinical", "A treatment goal or objective.", compartment=("subject",)),
    ResourceDefinition("CarePlan", "clinical", "An IPT treatment plan.", compartment=("subject",)),
    ResourceDefinition("Questionnaire", "content", "An IPT worksheet or a measure such as the PHQ-9."),
    ResourceDefinition(
        "QuestionnaireResponse",
        "clinical",
        "A completed or in-progress worksheet.",
        compartment=("subject", "author", "source"),
    ),
    ResourceDefinition(
        "Observation",
        "clinical",
        "A measurement such as a PHQ-9 total score, extracted from a completed response.",
        compartment=("subject",),
    ),
    ResourceDefinition("PlanDefinition", "content", "The IPT protocol."),
    ResourceDefinition("ActivityDefinition", "content", "An IPT session or technique."),
    ResourceDefinition("CodeSystem", "content", "IPT terminology."),
    ResourceDefinition("ValueSet", "content", "A set of IPT codes."),
)

RESOURCES: dict[str, ResourceDefinition] = {d.name: d for d in RESOURCE_DEFINITIONS}


def definition(resource_type: str) -> ResourceDefinition | None:
    return RESOURCES.get(resource_type)


def patient_compartment(resource_type: str, resource_id: str, content: dict[str, object]) -> str | None:
    """Return the id of the patient whose compartment the resource belongs to, if any.

    The first compartment element that holds a relative `Patient/<id>` (or `Patient/<id>/_history/<v>`)
    reference decides; an absolute reference does not count, even to a Patient.
    """
    if resource_type == "Patient":
        return resource_id
    spec = RESOURCES.get(resource_type)
    if spec is None:
        return None
    for element in spec.compartment:
        reference = reference_of(content.get(element))
        if reference is None:
            continue
        if reference.kind == "malformed":
            # Writes refuse it (`service.interactions.references`); should one reach here all the same, the
            # next element must not decide in its place.
            return None
        if reference.kind == "relative" and reference.resource_type == "Patient":
            return reference.resource_id
    return None
