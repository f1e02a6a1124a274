"""Where each field of the treatment-plan document travels in FHIR.

`FIELD_MAP` is the source of the table in `docs/mapping.md`; a test walks every field of `TreatmentPlan`
and fails when one has no row here, and another fails when the document's table differs from
`markdown_table()`. Paths use `[]` for list items: `goals[].targets[].due_date`.

Regenerate the table with `python -m mappings.plan_fieldmap` and paste it between the markers of the doc.
"""

from __future__ import annotations

from dataclasses import dataclass

from mappings.extensions import (
    EXT_ACTIVITY_LEVEL,
    EXT_ACTIVITY_TITLE,
    EXT_FOCUS_RANK,
    EXT_GOAL_ACCEPTANCE,
    EXT_GOAL_RELATIONSHIP,
    EXT_NOTE_TYPE,
    EXT_PHASE,
    EXT_RELAPSE_PREVENTION,
    EXT_SESSION_RANGE,
)

__all__ = ["FIELD_MAP", "FieldMapping", "markdown_table"]


@dataclass(frozen=True)
class FieldMapping:
    field: str
    """Document path, `[]` marking list items."""
    fhir: str
    """Resource.element path the field is written to."""
    extension: str | None = None
    """Extension URL when FHIR has no element for it."""
    note: str = ""


def _short(url: str) -> str:
    return url.rsplit("/", 1)[-1]


def _person(prefix: str, resource: str) -> tuple[FieldMapping, ...]:
    return (
        FieldMapping(f"{prefix}.id", f"{resource}.id"),
        FieldMapping(
            f"{prefix}.identifiers[]",
            f"{resource}.identifier",
            note="the first one is the conditional-create key (`ifNoneExist`)",
        ),
        FieldMapping(f"{prefix}.identifiers[].system", f"{resource}.identifier.system"),
        FieldMapping(f"{prefix}.identifiers[].value", f"{resource}.identifier.value"),
        FieldMapping(f"{prefix}.name", f"{resource}.name[0]"),
        FieldMapping(f"{prefix}.name.text", f"{resource}.name[0].text"),
        FieldMapping(f"{prefix}.name.family", f"{resource}.name[0].family"),
        FieldMapping(f"{prefix}.name.given[]", f"{resource}.name[0].given"),
    )


def _concept(prefix: str, element: str) -> tuple[FieldMapping, ...]:
    return (
        FieldMapping(f"{prefix}.codings[]", f"{element}.coding"),
        FieldMapping(f"{prefix}.codings[].system", f"{element}.coding.system"),
        FieldMapping(f"{prefix}.codings[].code", f"{element}.coding.code"),
        FieldMapping(f"{prefix}.codings[].display", f"{element}.coding.display"),
        FieldMapping(f"{prefix}.text", f"{element}.text"),
    )


def _goal(prefix: str, what: str) -> tuple[FieldMapping, ...]:
    return (
        FieldMapping(prefix, "Goal", note=f"{what}; listed in CarePlan.goal"),
        FieldMapping(f"{prefix}.id", "Goal.id"),
        FieldMapping(f"{prefix}.description", "Goal.description.text"),
        FieldMapping(f"{prefix}.lifecycle_status", "Goal.lifecycleStatus"),
        FieldMapping(f"{prefix}.achievement_status", "Goal.achievementStatus.coding (goal-achievement)"),
        FieldMapping(f"{prefix}.priority", "Goal.priority.coding (goal-priority)"),
        FieldMapping(f"{prefix}.problem_area", "Goal.category.coding (ipt-problem-area)"),
        FieldMapping(
            f"{prefix}.client_acceptance",
            "Goal.extension:acceptance.extension:status",
            EXT_GOAL_ACCEPTANCE,
            "individual = the Patient",
        ),
        FieldMapping(f"{prefix}.start_date", "Goal.startDate"),
        FieldMapping(f"{prefix}.targets[]", "Goal.target"),
        FieldMapping(f"{prefix}.targets[].measure", "Goal.target.measure"),
        *_concept(f"{prefix}.targets[].measure", "Goal.target.measure"),
        FieldMapping(f"{prefix}.targets[].detail_text", "Goal.target.detailString"),
        FieldMapping(f"{prefix}.targets[].detail_integer", "Goal.target.detailInteger"),
        FieldMapping(f"{prefix}.targets[].detail_range", "Goal.target.detailRange"),
        FieldMapping(f"{prefix}.targets[].detail_range.low", "Goal.target.detailRange.low.value"),
        FieldMapping(f"{prefix}.targets[].detail_range.high", "Goal.target.detailRange.high.value"),
        FieldMapping(f"{prefix}.targets[].due_date", "Goal.target.dueDate"),
        FieldMapping(f"{prefix}.notes[]", "Goal.note.text"),
    )


_RELAPSE = f"CarePlan.extension:{_short(EXT_RELAPSE_PREVENTION)}"
_SESSION = "CarePlan.activity (level session)"

FIELD_MAP: tuple[FieldMapping, ...] = (
    FieldMapping("id", "CarePlan.id", note="PUT CarePlan/id when set, else POST"),
    FieldMapping("status", "CarePlan.status"),
    FieldMapping("intent", "CarePlan.intent"),
    FieldMapping("title", "CarePlan.title"),
    FieldMapping("date", "CarePlan.created"),
    FieldMapping("period", "CarePlan.period"),
    FieldMapping("period.start", "CarePlan.period.start"),
    FieldMapping("period.end", "CarePlan.period.end"),
    FieldMapping(
        "client", "Patient", note="CarePlan.subject, Goal.subject, Condition.subject, CareTeam.subject"
    ),
    *_person("client", "Patient"),
    FieldMapping("client.birth_date", "Patient.birthDate"),
    FieldMapping("client.gender", "Patient.gender"),
    FieldMapping("diagnoses[]", "Condition", note="CarePlan.addresses, CareTeam.reasonReference"),
    FieldMapping("diagnoses[].id", "Condition.id"),
    FieldMapping(
        "diagnoses[].code", "Condition.code", note="ICD-10-CM, SNOMED CT, ICD-9-CM (legacy) codings"
    ),
    *_concept("diagnoses[].code", "Condition.code"),
    FieldMapping("diagnoses[].clinical_status", "Condition.clinicalStatus.coding (condition-clinical)"),
    FieldMapping(
        "diagnoses[].verification_status", "Condition.verificationStatus.coding (condition-ver-status)"
    ),
    FieldMapping("diagnoses[].category", "Condition.category.coding (condition-category)"),
    FieldMapping("diagnoses[].onset_date", "Condition.onsetDateTime"),
    FieldMapping(
        "therapist", "Practitioner", note="CarePlan.author; first CareTeam participant (role 224588003)"
    ),
    *_person("therapist", "Practitioner"),
    FieldMapping("therapist.credentials[]", "Practitioner.qualification.code.text"),
    FieldMapping("care_team", "CareTeam", note="CarePlan.careTeam; status follows the plan status"),
    FieldMapping("care_team.id", "CareTeam.id"),
    FieldMapping("care_team.name", "CareTeam.name"),
    FieldMapping("care_team.include_client", "CareTeam.participant (role 116154003 Patient, member Patient)"),
    FieldMapping("care_team.clinicians[]", "CareTeam.participant (member Practitioner)"),
    *_person("care_team.clinicians[]", "Practitioner"),
    FieldMapping("care_team.clinicians[].credentials[]", "Practitioner.qualification.code.text"),
    FieldMapping(
        "care_team.clinicians[].role", "CareTeam.participant.role.coding", note="SNOMED CT or project"
    ),
    FieldMapping("care_team.support_persons[]", "CareTeam.participant (member RelatedPerson)"),
    *_person("care_team.support_persons[]", "RelatedPerson"),
    FieldMapping(
        "care_team.support_persons[].relationship", "RelatedPerson.relationship.coding (v3-RoleCode)"
    ),
    FieldMapping("care_team.support_persons[].role", "CareTeam.participant.role.coding (SNOMED CT)"),
    FieldMapping("presenting_problem", "CarePlan.description"),
    FieldMapping(
        "primary_focus",
        "CarePlan.category.coding (ipt-problem-area)",
        EXT_FOCUS_RANK,
        "rank `primary` on the category",
    ),
    FieldMapping(
        "secondary_foci[]",
        "CarePlan.category.coding (ipt-problem-area)",
        EXT_FOCUS_RANK,
        "rank `secondary` on the category",
    ),
    *_goal("goals[]", "one Goal per goal"),
    FieldMapping(
        "goals[].objectives[]",
        "Goal",
        EXT_GOAL_RELATIONSHIP,
        "own Goal; the parent's goal-relationship (type milestone) targets it",
    ),
    *_goal("goals[].objectives[]", "one Goal per objective")[1:],
    FieldMapping(
        "structure", "CarePlan.activity (level course).detail.scheduledTiming.repeat", EXT_ACTIVITY_LEVEL
    ),
    FieldMapping("structure.frequency", "CarePlan.activity.detail.scheduledTiming.repeat.frequency"),
    FieldMapping("structure.period", "CarePlan.activity.detail.scheduledTiming.repeat.period"),
    FieldMapping("structure.period_unit", "CarePlan.activity.detail.scheduledTiming.repeat.periodUnit"),
    FieldMapping(
        "structure.session_minutes",
        "CarePlan.activity.detail.scheduledTiming.repeat.duration",
        note="durationUnit `min`; repeated on every scheduled activity",
    ),
    FieldMapping(
        "structure.sessions_min", "CarePlan.activity (level course).detail.scheduledTiming.repeat.count"
    ),
    FieldMapping(
        "structure.sessions_max", "CarePlan.activity (level course).detail.scheduledTiming.repeat.countMax"
    ),
    FieldMapping(
        "phases[]", "CarePlan.activity (level phase)", EXT_ACTIVITY_LEVEL, "detail.code = SNOMED IPT + phase"
    ),
    FieldMapping("phases[].code", "CarePlan.activity.extension:ipt-phase", EXT_PHASE),
    FieldMapping("phases[].title", "CarePlan.activity.extension:title", EXT_ACTIVITY_TITLE),
    FieldMapping("phases[].aim", "CarePlan.activity.detail.description"),
    FieldMapping("phases[].sessions", "CarePlan.activity.extension:ipt-session-range", EXT_SESSION_RANGE),
    FieldMapping("phases[].sessions.first", "CarePlan.activity.extension:ipt-session-range.valueRange.low"),
    FieldMapping("phases[].sessions.last", "CarePlan.activity.extension:ipt-session-range.valueRange.high"),
    FieldMapping("phases[].status", "CarePlan.activity.detail.status"),
    FieldMapping(
        "phases[].blocks[]",
        _SESSION,
        EXT_ACTIVITY_LEVEL,
        "one activity per item of the block, after its phase; timing count = block size",
    ),
    FieldMapping(
        "phases[].blocks[].sessions", "CarePlan.activity.extension:ipt-session-range", EXT_SESSION_RANGE
    ),
    FieldMapping(
        "phases[].blocks[].sessions.first", "CarePlan.activity.extension:ipt-session-range.valueRange.low"
    ),
    FieldMapping(
        "phases[].blocks[].sessions.last", "CarePlan.activity.extension:ipt-session-range.valueRange.high"
    ),
    FieldMapping(
        "phases[].blocks[].activities[]", _SESSION, note="also carries the phase's ipt-phase extension"
    ),
    FieldMapping(
        "phases[].blocks[].activities[].title", "CarePlan.activity.extension:title", EXT_ACTIVITY_TITLE
    ),
    FieldMapping("phases[].blocks[].activities[].description", "CarePlan.activity.detail.description"),
    FieldMapping(
        "phases[].blocks[].activities[].techniques[]",
        "CarePlan.activity.detail.code.coding (ipt-technique)",
        note="after the SNOMED 443730003 coding",
    ),
    FieldMapping(
        "phases[].blocks[].activities[].worksheets[]",
        "CarePlan.activity.detail.instantiatesCanonical",
        note="`{IPT_BASE}/Questionnaire/<id>`",
    ),
    FieldMapping("phases[].blocks[].activities[].status", "CarePlan.activity.detail.status"),
    FieldMapping("interventions[]", "CarePlan.activity (level intervention)", EXT_ACTIVITY_LEVEL),
    FieldMapping("interventions[].title", "CarePlan.activity.extension:title", EXT_ACTIVITY_TITLE),
    FieldMapping("interventions[].description", "CarePlan.activity.detail.description"),
    FieldMapping("interventions[].techniques[]", "CarePlan.activity.detail.code.coding (ipt-technique)"),
    FieldMapping("progress_monitoring[]", "CarePlan.activity (level monitoring)", EXT_ACTIVITY_LEVEL),
    FieldMapping("progress_monitoring[].instrument", "CarePlan.activity.detail.code"),
    *_concept("progress_monitoring[].instrument", "CarePlan.activity.detail.code"),
    FieldMapping("progress_monitoring[].cadence", "CarePlan.activity.detail.scheduledTiming.code.text"),
    FieldMapping("progress_monitoring[].description", "CarePlan.activity.detail.description"),
    FieldMapping("prognosis", "CarePlan.note.text", EXT_NOTE_TYPE, "note type `prognosis`"),
    FieldMapping("relapse_prevention", _RELAPSE, EXT_RELAPSE_PREVENTION),
    FieldMapping("relapse_prevention.warning_signs[]", f"{_RELAPSE}.extension:warningSign.valueString"),
    FieldMapping("relapse_prevention.supports[]", f"{_RELAPSE}.extension:support"),
    FieldMapping("relapse_prevention.supports[].name", f"{_RELAPSE}.extension:support.extension:name"),
    FieldMapping(
        "relapse_prevention.supports[].relationship", f"{_RELAPSE}.extension:support.extension:relationship"
    ),
    FieldMapping("relapse_prevention.supports[].contact", f"{_RELAPSE}.extension:support.extension:contact"),
    FieldMapping("relapse_prevention.strategies[]", f"{_RELAPSE}.extension:strategy.valueString"),
    FieldMapping("relapse_prevention.skills[]", f"{_RELAPSE}.extension:skill"),
    FieldMapping("relapse_prevention.skills[].skill", f"{_RELAPSE}.extension:skill.extension:name"),
    FieldMapping("relapse_prevention.skills[].when", f"{_RELAPSE}.extension:skill.extension:when"),
    FieldMapping("relapse_prevention.long_term_goals[]", f"{_RELAPSE}.extension:longTermGoal.valueString"),
    FieldMapping(
        "relapse_prevention.if_symptoms_return", f"{_RELAPSE}.extension:ifSymptomsReturn.valueString"
    ),
    FieldMapping("relapse_prevention.review_date", f"{_RELAPSE}.extension:reviewDate.valueDate"),
    FieldMapping("notes[]", "CarePlan.note.text", note="notes without a type"),
)


def markdown_table() -> str:
    """The field map as the Markdown table of `docs/mapping.md`."""
    lines = ["| document field | FHIR resource.element | extension | note |", "|---|---|---|---|"]
    for row in FIELD_MAP:
        extension = f"`{_short(row.extension)}`" if row.extension else ""
        lines.append(f"| `{row.field}` | `{row.fhir}` | {extension} | {row.note} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown_table(), end="")
