"""The plan's people and care team <-> Patient, Practitioner, RelatedPerson and CareTeam.

People are matched by their first identifier (conditional create), so posting the same therapist with two
plans leaves one Practitioner. The care team lists, in this order: the therapist (who is also the CarePlan
author), the other clinicians, the client when `include_client`, and the support persons. Roles are coded
with SNOMED CT where a verified concept exists and with the project code `clinical-supervisor` otherwise.

No PractitionerRole is written: the role a clinician has in this plan is `CareTeam.participant.role`, and a
credential such as Ph.D. belongs to `Practitioner.qualification`; a PractitionerRole would add a resource
without adding information.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

from mappings.codes import V3_ROLE_CODE
from mappings.domain import (
    CareTeam,
    Client,
    Clinician,
    ClinicianRole,
    PlanStatus,
    Relationship,
    SupportPerson,
    SupportRole,
    TeamClinician,
    TreatmentPlan,
)
from mappings.extensions import CARE_TEAM_CATEGORY, CARE_TEAM_ROLE_CODING, RELATIONSHIP_DISPLAY
from mappings.plan_fhir import (
    Json,
    MappingError,
    Resolver,
    TransactionBuilder,
    coding,
    date_text,
    first_code,
    identifiers_from_fhir,
    identifiers_to_fhir,
    name_from_fhir,
    name_to_fhir,
    parse_date,
    put_if,
    reference,
    security_meta,
)

__all__ = ["PeopleRefs", "add_people", "careteam_from_fhir", "careteam_to_fhir"]

# A plan's status decides its team's: the team exists for as long as the plan runs.
_TEAM_STATUS: dict[PlanStatus, str | None] = {
    "draft": "proposed",
    "active": "active",
    "on-hold": "suspended",
    "revoked": "inactive",
    "completed": "inactive",
    "entered-in-error": "entered-in-error",
    "unknown": None,
}
_CLINICIAN_ROLES: tuple[ClinicianRole, ...] = ("therapist", "supervisor", "psychiatrist")


@dataclass
class PeopleRefs:
    """The fullUrls the people got in the transaction, for the other resources to reference."""

    patient: str
    therapist: str
    clinicians: list[str] = field(default_factory=list)
    support_persons: list[str] = field(default_factory=list)


def add_people(plan: TreatmentPlan, builder: TransactionBuilder) -> PeopleRefs:
    """Add the client, the clinicians and the support persons to the transaction as conditional creates."""
    refs = PeopleRefs(patient=builder.new_url(), therapist=builder.new_url())
    builder.add(refs.patient, _patient(plan.client), identifier=plan.client.identifiers[0])
    builder.add(refs.therapist, _practitioner(plan.therapist), identifier=plan.therapist.identifiers[0])
    for clinician in plan.care_team.clinicians:
        url = builder.new_url()
        builder.add(url, _practitioner(clinician), identifier=clinician.identifiers[0])
        refs.clinicians.append(url)
    for person in plan.care_team.support_persons:
        url = builder.new_url()
        builder.add(url, _related_person(person, refs.patient), identifier=person.identifiers[0])
        refs.support_persons.append(url)
    return refs


def careteam_to_fhir(plan: TreatmentPlan, people: PeopleRefs, *, conditions: list[str]) -> Json:
    team = plan.care_team
    participants = [_participant("therapist", people.therapist)]
    participants += [
        _participant(c.role, url) for c, url in zip(team.clinicians, people.clinicians, strict=True)
    ]
    if team.include_client:
        participants.append(_participant("client", people.patient))
    participants += [
        _participant(p.role, url) for p, url in zip(team.support_persons, people.support_persons, strict=True)
    ]
    resource: Json = {"resourceType": "CareTeam"}
    put_if(resource, "id", team.id)
    resource["meta"] = security_meta()
    put_if(resource, "status", _TEAM_STATUS[plan.status])
    resource["category"] = [{"coding": [dict(CARE_TEAM_CATEGORY)]}]
    put_if(resource, "name", team.name)
    resource["subject"] = reference(people.patient)
    resource["participant"] = participants
    resource["reasonReference"] = [reference(url) for url in conditions]
    return resource


def careteam_from_fhir(careplan: Json, resolver: Resolver) -> tuple[Client, Clinician, CareTeam]:
    """The client (`CarePlan.subject`), the therapist (`CarePlan.author`) and the rest of the team."""
    client = _client(resolver.resolve(careplan.get("subject"), "Patient", "CarePlan.subject"))
    author = careplan.get("author")
    practitioner = resolver.resolve(author, "Practitioner", "CarePlan.author")
    therapist = Clinician(**_clinician_fields(practitioner, "CarePlan.author"))
    teams = careplan.get("careTeam", [])
    if len(teams) != 1:
        raise MappingError(f"CarePlan.careTeam: expected one CareTeam, found {len(teams)}")
    resource = resolver.resolve(teams[0], "CareTeam", "CarePlan.careTeam[0]")
    author_key = resolver.key(author)
    author_seen = False
    clinicians: list[TeamClinician] = []
    support_persons: list[SupportPerson] = []
    include_client = False
    for i, participant in enumerate(resource.get("participant", [])):
        where = f"CareTeam.participant[{i}]"
        role = _role(participant, where)
        member = participant.get("member")
        if role == "therapist" and not author_seen and resolver.key(member) == author_key:
            author_seen = True
        elif role == "client":
            resolver.resolve(member, "Patient", f"{where}.member")
            include_client = True
        elif role in _CLINICIAN_ROLES:
            practitioner = resolver.resolve(member, "Practitioner", f"{where}.member")
            fields = _clinician_fields(practitioner, f"{where}.member")
            clinicians.append(TeamClinician(**fields, role=role))
        else:
            related = resolver.resolve(member, "RelatedPerson", f"{where}.member")
            support_persons.append(_support_person(related, cast(SupportRole, role), f"{where}.member"))
    if not author_seen:
        raise MappingError("CareTeam.participant: the plan's author is not listed as therapist")
    team = CareTeam(
        id=resource.get("id"),
        name=resource.get("name"),
        include_client=include_client,
        clinicians=clinicians,
        support_persons=support_persons,
    )
    return client, therapist, team


def _participant(role: str, member: str) -> Json:
    return {"role": [{"coding": [dict(CARE_TEAM_ROLE_CODING[role])]}], "member": reference(member)}


def _role(participant: Json, where: str) -> str:
    for concept in participant.get("role", []):
        for value in concept.get("coding", []):
            for role, known in CARE_TEAM_ROLE_CODING.items():
                if value.get("system") == known["system"] and value.get("code") == known["code"]:
                    return role
    raise MappingError(f"{where}.role: no known IPT care-team role")


def _patient(client: Client) -> Json:
    resource: Json = {"resourceType": "Patient"}
    put_if(resource, "id", client.id)
    resource["identifier"] = identifiers_to_fhir(client.identifiers)
    resource["name"] = [name_to_fhir(client.name)]
    put_if(resource, "gender", client.gender)
    put_if(resource, "birthDate", date_text(client.birth_date))
    return resource


def _client(resource: Json) -> Client:
    where = "Patient"
    return Client(
        id=resource.get("id"),
        identifiers=identifiers_from_fhir(resource, where),
        name=name_from_fhir(resource, where),
        gender=resource.get("gender"),
        birth_date=parse_date(resource.get("birthDate"), f"{where}.birthDate"),
    )


def _practitioner(clinician: Clinician) -> Json:
    resource: Json = {"resourceType": "Practitioner"}
    put_if(resource, "id", clinician.id)
    resource["identifier"] = identifiers_to_fhir(clinician.identifiers)
    resource["name"] = [name_to_fhir(clinician.name)]
    put_if(resource, "qualification", [{"code": {"text": text}} for text in clinician.credentials])
    return resource


def _clinician_fields(resource: Json, where: str) -> dict[str, Any]:
    credentials: list[Any] = []
    for i, qualification in enumerate(resource.get("qualification", [])):
        text = qualification.get("code", {}).get("text")
        if text is None:
            raise MappingError(f"{where}.qualification[{i}].code.text: missing")
        credentials.append(text)
    return {
        "id": resource.get("id"),
        "identifiers": identifiers_from_fhir(resource, where),
        "name": name_from_fhir(resource, where),
        "credentials": credentials,
    }


def _related_person(person: SupportPerson, patient: str) -> Json:
    resource: Json = {"resourceType": "RelatedPerson"}
    put_if(resource, "id", person.id)
    resource["identifier"] = identifiers_to_fhir(person.identifiers)
    resource["patient"] = reference(patient)
    resource["relationship"] = [
        {"coding": [coding(V3_ROLE_CODE, person.relationship, RELATIONSHIP_DISPLAY[person.relationship])]}
    ]
    resource["name"] = [name_to_fhir(person.name)]
    return resource


def _support_person(resource: Json, role: SupportRole, where: str) -> SupportPerson:
    relationships = resource.get("relationship", [])
    code = first_code(relationships[0], V3_ROLE_CODE) if relationships else None
    if code not in RELATIONSHIP_DISPLAY:
        raise MappingError(f"{where}.relationship: expected a known v3-RoleCode relationship, got {code!r}")
    return SupportPerson(
        id=resource.get("id"),
        identifiers=identifiers_from_fhir(resource, where),
        name=name_from_fhir(resource, where),
        relationship=cast(Relationship, code),
        role=role,
    )
