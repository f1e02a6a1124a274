"""TreatmentPlan <-> a FHIR transaction Bundle around one CarePlan.

`to_fhir_transaction` writes the plan as a transaction Bundle: the people (conditional creates, matched by
identifier), one Condition per diagnosis, the CareTeam, the Goals (objectives as milestone Goals) and the
CarePlan that references them all through `urn:uuid:` fullUrls. Resources that carry a FHIR id (a plan read
back from the server) are updated in place with PUT; people are always matched by identifier instead, so
a plan never overwrites what an EHR knows about a person.

`from_fhir` reads the plan back from the CarePlan and the resources it references; `from_fhir_bundle` does
the same from any Bundle holding them (the transaction itself, a transaction-response with representations,
or a searchset with `_include`). Document -> FHIR -> document is lossless; `docs/mapping.md` lists where each
document field travels.

`CarePlan.activity` holds, in this order: one `course` activity (the therapy structure: weekly timing,
50-minute duration, count 12 / countMax 16 sessions), then for each phase a `phase` activity followed by one
`session` activity per planned activity of each session block, then the `intervention` and `monitoring`
activities. The project extension `ipt-activity-level` says which is which.

Usage:

    bundle = to_fhir_transaction(plan)
    assert from_fhir_bundle(bundle) == plan
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any
from uuid import UUID, uuid4

from pydantic import ValidationError

from mappings.careteam import add_people, careteam_from_fhir, careteam_to_fhir
from mappings.codes import (
    PHASE_SYSTEM,
    PROBLEM_AREA_SYSTEM,
    QUESTIONNAIRE_BASE,
    SNOMED,
    SNOMED_IPT,
    SNOMED_MENTAL_HEALTH_CARE_PLAN,
    TECHNIQUE_SYSTEM,
)
from mappings.domain import (
    ActivityStatus,
    Intervention,
    Monitoring,
    Period,
    Phase,
    PlanStatus,
    RelapsePrevention,
    SessionActivity,
    SessionBlock,
    SessionRange,
    SkillPlan,
    Structure,
    SupportContact,
    TreatmentPlan,
)
from mappings.extensions import (
    EXT_ACTIVITY_LEVEL,
    EXT_ACTIVITY_TITLE,
    EXT_FOCUS_RANK,
    EXT_NOTE_TYPE,
    EXT_PHASE,
    EXT_RELAPSE_PREVENTION,
    EXT_SESSION_RANGE,
    IPT_PLAN_DEFINITION,
    MENTAL_HEALTH_CARE_PLAN_DISPLAY,
    PHASE_DISPLAY,
    PROBLEM_AREA_DISPLAY,
    RELAPSE_IF_SYMPTOMS_RETURN,
    RELAPSE_LONG_TERM_GOAL,
    RELAPSE_REVIEW_DATE,
    RELAPSE_SKILL,
    RELAPSE_SKILL_NAME,
    RELAPSE_SKILL_WHEN,
    RELAPSE_STRATEGY,
    RELAPSE_SUPPORT,
    RELAPSE_SUPPORT_CONTACT,
    RELAPSE_SUPPORT_NAME,
    RELAPSE_SUPPORT_RELATIONSHIP,
    RELAPSE_WARNING_SIGN,
    SNOMED_IPT_DISPLAY,
    TECHNIQUE_DISPLAY,
)
from mappings.plan_fhir import (
    Json,
    MappingError,
    Resolver,
    TransactionBuilder,
    codes_in,
    coding,
    concept_from_fhir,
    concept_to_fhir,
    date_text,
    extension,
    extension_value,
    extensions,
    parse_date,
    put_if,
    reference,
    resolved_from_bundle,
    security_meta,
    whole_number,
)
from mappings.plan_goals import condition_from_fhir, condition_to_fhir, goal_to_fhir, goals_from_fhir

__all__ = ["MappingError", "from_fhir", "from_fhir_bundle", "resolved_from_bundle", "to_fhir_transaction"]

# Activities that have no status of their own in the document follow the plan's.
_ACTIVITY_STATUS: dict[PlanStatus, ActivityStatus] = {
    "draft": "not-started",
    "active": "in-progress",
    "on-hold": "on-hold",
    "revoked": "stopped",
    "completed": "completed",
    "entered-in-error": "entered-in-error",
    "unknown": "unknown",
}
_SNOMED_IPT_CODING = coding(SNOMED, SNOMED_IPT, SNOMED_IPT_DISPLAY)
_WORKSHEET_PREFIX = f"{QUESTIONNAIRE_BASE}/"


def to_fhir_transaction(plan: TreatmentPlan, *, new_uuid: Callable[[], UUID] = uuid4) -> dict[str, Any]:
    """The plan as a FHIR transaction Bundle (a JSON dict); `new_uuid` makes the fullUrls reproducible."""
    builder = TransactionBuilder(new_uuid)
    people = add_people(plan, builder)
    conditions = []
    for diagnosis in plan.diagnoses:
        url = builder.new_url()
        builder.add(url, condition_to_fhir(diagnosis, patient=people.patient, asserter=people.therapist))
        conditions.append(url)
    team = builder.new_url()
    builder.add(team, careteam_to_fhir(plan, people, conditions=conditions))
    goals = []
    for goal in plan.goals:
        url = builder.new_url()
        objectives = [builder.new_url() for _ in goal.objectives]
        builder.add(url, goal_to_fhir(goal, patient=people.patient, milestones=objectives))
        goals.append(url)
        for objective, objective_url in zip(goal.objectives, objectives, strict=True):
            builder.add(objective_url, goal_to_fhir(objective, patient=people.patient, milestones=[]))
            goals.append(objective_url)

    careplan: Json = {"resourceType": "CarePlan"}
    put_if(careplan, "id", plan.id)
    careplan["meta"] = security_meta()
    if plan.relapse_prevention is not None:
        careplan["extension"] = [_relapse_to_fhir(plan.relapse_prevention)]
    careplan["instantiatesCanonical"] = [IPT_PLAN_DEFINITION]
    careplan["status"] = plan.status
    careplan["intent"] = plan.intent
    careplan["category"] = _categories(plan)
    put_if(careplan, "title", plan.title)
    put_if(careplan, "description", plan.presenting_problem)
    careplan["subject"] = reference(people.patient)
    if plan.period is not None:
        period: Json = {}
        put_if(period, "start", date_text(plan.period.start))
        put_if(period, "end", date_text(plan.period.end))
        careplan["period"] = period
    put_if(careplan, "created", date_text(plan.date))
    careplan["author"] = reference(people.therapist)
    careplan["careTeam"] = [reference(team)]
    careplan["addresses"] = [reference(url) for url in conditions]
    put_if(careplan, "goal", [reference(url) for url in goals])
    careplan["activity"] = _activities(plan, therapist=people.therapist)
    notes = [] if plan.prognosis is None else [_prognosis_note(plan.prognosis)]
    put_if(careplan, "note", notes + [{"text": text} for text in plan.notes])
    builder.add(builder.new_url(), careplan)
    return builder.bundle()


def from_fhir(careplan: Mapping[str, Any], resolved: Mapping[str, Mapping[str, Any]]) -> TreatmentPlan:
    """Read a plan back from its CarePlan and the resources the CarePlan references.

    `resolved` maps each reference as written in the resources (`Patient/123`, `urn:uuid:...`) to the
    resource; see `resolved_from_bundle`. Raises `MappingError` naming the FHIR path when the resources do
    not hold an IPT plan written by `to_fhir_transaction` (or edited within its shape).
    """
    plan = dict(careplan)
    if plan.get("resourceType") != "CarePlan":
        raise MappingError(f"resourceType: expected CarePlan, got {plan.get('resourceType')!r}")
    resolver = Resolver({key: dict(value) for key, value in resolved.items()})
    try:
        return _plan_from_fhir(plan, resolver)
    except ValidationError as exc:
        raise MappingError(f"the resources do not form a valid treatment plan: {exc}") from exc


def from_fhir_bundle(bundle: Mapping[str, Any]) -> TreatmentPlan:
    """Read the plan from a Bundle holding its one CarePlan and the resources it references."""
    entries = bundle.get("entry", [])
    careplans = [e["resource"] for e in entries if e.get("resource", {}).get("resourceType") == "CarePlan"]
    if len(careplans) != 1:
        raise MappingError(f"Bundle.entry: expected one CarePlan, found {len(careplans)}")
    return from_fhir(careplans[0], resolved_from_bundle(dict(bundle)))


def _plan_from_fhir(careplan: Json, resolver: Resolver) -> TreatmentPlan:
    client, therapist, team = careteam_from_fhir(careplan, resolver)
    diagnoses = [
        condition_from_fhir(
            resolver.resolve(value, "Condition", f"CarePlan.addresses[{i}]"), f"Condition[{i}]"
        )
        for i, value in enumerate(careplan.get("addresses", []))
    ]
    primary, secondary = _foci_from_fhir(careplan)
    structure, phases, interventions, monitoring = _activities_from_fhir(careplan)
    prognosis, notes = None, []
    for note in careplan.get("note", []):
        if extension_value(note, EXT_NOTE_TYPE, "valueCode") == "prognosis":
            prognosis = note.get("text")
        else:
            notes.append(note.get("text"))
    relapse = extensions(careplan, EXT_RELAPSE_PREVENTION)
    period = careplan.get("period")
    return TreatmentPlan(
        id=careplan.get("id"),
        status=careplan.get("status"),
        intent=careplan.get("intent"),
        title=careplan.get("title"),
        date=parse_date(careplan.get("created"), "CarePlan.created"),
        period=None
        if period is None
        else Period(
            start=parse_date(period.get("start"), "CarePlan.period.start"),
            end=parse_date(period.get("end"), "CarePlan.period.end"),
        ),
        client=client,
        diagnoses=diagnoses,
        therapist=therapist,
        care_team=team,
        presenting_problem=careplan.get("description"),
        primary_focus=primary,
        secondary_foci=secondary,
        goals=goals_from_fhir(careplan, resolver),
        structure=structure,
        phases=phases,
        interventions=interventions,
        progress_monitoring=monitoring,
        prognosis=prognosis,
        relapse_prevention=_relapse_from_fhir(relapse[0]) if relapse else None,
        notes=notes,
    )


def _categories(plan: TreatmentPlan) -> list[Json]:
    categories: list[Json] = [
        {"coding": [coding(SNOMED, SNOMED_MENTAL_HEALTH_CARE_PLAN, MENTAL_HEALTH_CARE_PLAN_DISPLAY)]}
    ]
    ranked = [] if plan.primary_focus is None else [("primary", plan.primary_focus)]
    ranked += [("secondary", area) for area in plan.secondary_foci]
    for rank, area in ranked:
        categories.append(
            {
                "extension": [extension(EXT_FOCUS_RANK, valueCode=rank)],
                "coding": [coding(PROBLEM_AREA_SYSTEM, area, PROBLEM_AREA_DISPLAY[area])],
            }
        )
    return categories


def _foci_from_fhir(careplan: Json) -> tuple[Any, list[Any]]:
    primary = None
    secondary = []
    for category in careplan.get("category", []):
        areas = codes_in(category, PROBLEM_AREA_SYSTEM)
        if not areas:
            continue
        if extension_value(category, EXT_FOCUS_RANK, "valueCode") == "primary":
            primary = areas[0]
        else:
            secondary.append(areas[0])
    return primary, secondary


def _prognosis_note(text: str) -> Json:
    return {"extension": [extension(EXT_NOTE_TYPE, valueCode="prognosis")], "text": text}


# --- activities --------------------------------------------------------------------------------------------


def _activities(plan: TreatmentPlan, *, therapist: str) -> list[Json]:
    structure = plan.structure
    derived_status = _ACTIVITY_STATUS[plan.status]
    performer = [reference(therapist)]
    activities = [
        _activity(
            "course",
            detail={
                "kind": "Appointment",
                "code": {"coding": [dict(_SNOMED_IPT_CODING)]},
                "status": derived_status,
                "scheduledTiming": _timing(structure, structure.sessions_min, structure.sessions_max),
                "performer": performer,
            },
        )
    ]
    for phase in plan.phases:
        phase_coding = coding(PHASE_SYSTEM, phase.code, PHASE_DISPLAY[phase.code])
        detail: Json = {
            "kind": "Appointment",
            "code": {"coding": [dict(_SNOMED_IPT_CODING), phase_coding]},
            "status": phase.status,
            "scheduledTiming": _timing(structure, _size(phase.sessions)),
            "performer": performer,
        }
        put_if(detail, "description", phase.aim)
        activities.append(
            _activity("phase", title=phase.title, phase=phase_coding, sessions=phase.sessions, detail=detail)
        )
        for block in phase.blocks:
            for item in block.activities:
                detail = {"kind": "Appointment"}
                put_if(detail, "instantiatesCanonical", [f"{_WORKSHEET_PREFIX}{w}" for w in item.worksheets])
                detail["code"] = {"coding": [dict(_SNOMED_IPT_CODING), *_technique_codings(item.techniques)]}
                detail["status"] = item.status
                detail["scheduledTiming"] = _timing(structure, _size(block.sessions))
                detail["performer"] = performer
                put_if(detail, "description", item.description)
                activities.append(
                    _activity(
                        "session",
                        title=item.title,
                        phase=phase_coding,
                        sessions=block.sessions,
                        detail=detail,
                    )
                )
    for intervention in plan.interventions:
        detail = {}
        put_if(detail, "code", _techniques_concept(intervention.techniques))
        detail["status"] = derived_status
        detail["performer"] = performer
        put_if(detail, "description", intervention.description)
        activities.append(_activity("intervention", title=intervention.title, detail=detail))
    for monitoring in plan.progress_monitoring:
        detail = {"code": concept_to_fhir(monitoring.instrument), "status": derived_status}
        if monitoring.cadence is not None:
            detail["scheduledTiming"] = {"code": {"text": monitoring.cadence}}
        put_if(detail, "description", monitoring.description)
        activities.append(_activity("monitoring", detail=detail))
    return activities


def _activity(
    level: str,
    *,
    detail: Json,
    title: str | None = None,
    phase: Json | None = None,
    sessions: SessionRange | None = None,
) -> Json:
    ext = [] if title is None else [extension(EXT_ACTIVITY_TITLE, valueString=title)]
    ext.append(extension(EXT_ACTIVITY_LEVEL, valueCode=level))
    if phase is not None:
        ext.append(extension(EXT_PHASE, valueCoding=phase))
    if sessions is not None:
        bounds = {"low": {"value": sessions.first}, "high": {"value": sessions.last}}
        ext.append(extension(EXT_SESSION_RANGE, valueRange=bounds))
    return {"extension": ext, "detail": detail}


def _size(sessions: SessionRange) -> int:
    return sessions.last - sessions.first + 1


def _timing(structure: Structure, count: int, count_max: int | None = None) -> Json:
    repeat: Json = {"count": count}
    put_if(repeat, "countMax", count_max)
    repeat |= {
        "duration": structure.session_minutes,
        "durationUnit": "min",
        "frequency": structure.frequency,
        "period": structure.period,
        "periodUnit": structure.period_unit,
    }
    return {"repeat": repeat}


def _technique_codings(techniques: Sequence[str]) -> list[Json]:
    return [coding(TECHNIQUE_SYSTEM, code, TECHNIQUE_DISPLAY[code]) for code in techniques]


def _techniques_concept(techniques: Sequence[str]) -> Json | None:
    return {"coding": _technique_codings(techniques)} if techniques else None


def _activities_from_fhir(
    careplan: Json,
) -> tuple[Structure, list[Phase], list[Intervention], list[Monitoring]]:
    structure: Structure | None = None
    phases: list[Json] = []
    interventions: list[Intervention] = []
    monitoring: list[Monitoring] = []
    for i, activity in enumerate(careplan.get("activity", [])):
        where = f"CarePlan.activity[{i}]"
        level = extension_value(activity, EXT_ACTIVITY_LEVEL, "valueCode")
        detail = activity.get("detail")
        if not isinstance(detail, dict):
            raise MappingError(f"{where}.detail: missing")
        title = extension_value(activity, EXT_ACTIVITY_TITLE, "valueString")
        if level == "course":
            if structure is not None:
                raise MappingError(f"{where}: a plan has one course activity")
            structure = _structure_from_fhir(detail, f"{where}.detail.scheduledTiming.repeat")
        elif level == "phase":
            phases.append(
                {
                    "code": _phase_code(activity, where),
                    "title": title,
                    "aim": detail.get("description"),
                    "sessions": _session_range(activity, where),
                    "status": detail.get("status"),
                    "blocks": [],
                }
            )
        elif level == "session":
            _add_session_activity(phases, activity, detail, title, where)
        elif level == "intervention":
            interventions.append(
                Intervention(
                    title=title,
                    description=detail.get("description"),
                    techniques=codes_in(detail.get("code"), TECHNIQUE_SYSTEM),
                )
            )
        elif level == "monitoring":
            if "code" not in detail:
                raise MappingError(f"{where}.detail.code: the monitoring instrument is missing")
            monitoring.append(
                Monitoring(
                    instrument=concept_from_fhir(detail["code"], f"{where}.detail.code"),
                    cadence=detail.get("scheduledTiming", {}).get("code", {}).get("text"),
                    description=detail.get("description"),
                )
            )
        else:
            raise MappingError(
                f"{where}: not an IPT plan activity (extension {EXT_ACTIVITY_LEVEL} = {level!r})"
            )
    if structure is None:
        raise MappingError("CarePlan.activity: the course activity (therapy structure) is missing")
    return structure, [Phase.model_validate(p) for p in phases], interventions, monitoring


def _add_session_activity(phases: list[Json], activity: Json, detail: Json, title: Any, where: str) -> None:
    code = _phase_code(activity, where)
    if not phases or phases[-1]["code"] != code:
        raise MappingError(f"{where}: a session activity must follow the activity of its phase {code!r}")
    sessions = _session_range(activity, where)
    worksheets = []
    for j, canonical in enumerate(detail.get("instantiatesCanonical", [])):
        if not str(canonical).startswith(_WORKSHEET_PREFIX):
            raise MappingError(
                f"{where}.detail.instantiatesCanonical[{j}]: not an IPT worksheet: {canonical!r}"
            )
        worksheets.append(str(canonical)[len(_WORKSHEET_PREFIX) :])
    item = SessionActivity(
        title=title,
        description=detail.get("description"),
        techniques=codes_in(detail.get("code"), TECHNIQUE_SYSTEM),
        worksheets=worksheets,
        status=detail.get("status"),
    )
    blocks: list[SessionBlock] = phases[-1]["blocks"]
    if blocks and blocks[-1].sessions == sessions:
        blocks[-1].activities.append(item)
    else:
        blocks.append(SessionBlock(sessions=sessions, activities=[item]))


def _structure_from_fhir(detail: Json, where: str) -> Structure:
    repeat = detail.get("scheduledTiming", {}).get("repeat")
    if not isinstance(repeat, dict):
        raise MappingError(f"{where}: missing")
    count = whole_number(repeat.get("count"), f"{where}.count")
    return Structure(
        frequency=whole_number(repeat.get("frequency"), f"{where}.frequency"),
        period=whole_number(repeat.get("period"), f"{where}.period"),
        period_unit=repeat.get("periodUnit"),
        session_minutes=whole_number(repeat.get("duration"), f"{where}.duration"),
        sessions_min=count,
        sessions_max=whole_number(repeat.get("countMax", count), f"{where}.countMax"),
    )


def _phase_code(activity: Json, where: str) -> str:
    value = extension_value(activity, EXT_PHASE, "valueCoding") or {}
    if value.get("system") != PHASE_SYSTEM or not value.get("code"):
        raise MappingError(f"{where}.extension: {EXT_PHASE} with an ipt-phase coding is missing")
    return str(value["code"])


def _session_range(activity: Json, where: str) -> SessionRange:
    value = extension_value(activity, EXT_SESSION_RANGE, "valueRange") or {}
    low, high = value.get("low", {}).get("value"), value.get("high", {}).get("value")
    if low is None or high is None:
        raise MappingError(f"{where}.extension: {EXT_SESSION_RANGE} with low and high is missing")
    return SessionRange(first=whole_number(low, f"{where}.low"), last=whole_number(high, f"{where}.high"))


# --- relapse prevention ------------------------------------------------------------------------------------


def _relapse_to_fhir(relapse: RelapsePrevention) -> Json:
    parts: list[Json] = [extension(RELAPSE_WARNING_SIGN, valueString=text) for text in relapse.warning_signs]
    for support in relapse.supports:
        fields = [extension(RELAPSE_SUPPORT_NAME, valueString=support.name)]
        if support.relationship is not None:
            fields.append(extension(RELAPSE_SUPPORT_RELATIONSHIP, valueString=support.relationship))
        if support.contact is not None:
            fields.append(extension(RELAPSE_SUPPORT_CONTACT, valueString=support.contact))
        parts.append({"url": RELAPSE_SUPPORT, "extension": fields})
    parts += [extension(RELAPSE_STRATEGY, valueString=text) for text in relapse.strategies]
    for skill in relapse.skills:
        fields = [extension(RELAPSE_SKILL_NAME, valueString=skill.skill)]
        if skill.when is not None:
            fields.append(extension(RELAPSE_SKILL_WHEN, valueString=skill.when))
        parts.append({"url": RELAPSE_SKILL, "extension": fields})
    parts += [extension(RELAPSE_LONG_TERM_GOAL, valueString=text) for text in relapse.long_term_goals]
    if relapse.if_symptoms_return is not None:
        parts.append(extension(RELAPSE_IF_SYMPTOMS_RETURN, valueString=relapse.if_symptoms_return))
    if relapse.review_date is not None:
        parts.append(extension(RELAPSE_REVIEW_DATE, valueDate=relapse.review_date.isoformat()))
    return {"url": EXT_RELAPSE_PREVENTION, "extension": parts}


def _relapse_from_fhir(value: Json) -> RelapsePrevention:
    where = f"CarePlan.extension({EXT_RELAPSE_PREVENTION})"

    def strings(element: Json, url: str) -> list[Any]:
        return [e.get("valueString") for e in extensions(element, url)]

    def string(element: Json, url: str) -> Any:
        found = strings(element, url)
        return found[0] if found else None

    return RelapsePrevention(
        warning_signs=strings(value, RELAPSE_WARNING_SIGN),
        supports=[
            SupportContact(
                name=string(e, RELAPSE_SUPPORT_NAME),
                relationship=string(e, RELAPSE_SUPPORT_RELATIONSHIP),
                contact=string(e, RELAPSE_SUPPORT_CONTACT),
            )
            for e in extensions(value, RELAPSE_SUPPORT)
        ],
        strategies=strings(value, RELAPSE_STRATEGY),
        skills=[
            SkillPlan(skill=string(e, RELAPSE_SKILL_NAME), when=string(e, RELAPSE_SKILL_WHEN))
            for e in extensions(value, RELAPSE_SKILL)
        ],
        long_term_goals=strings(value, RELAPSE_LONG_TERM_GOAL),
        if_symptoms_return=string(value, RELAPSE_IF_SYMPTOMS_RETURN),
        review_date=parse_date(
            extension_value(value, RELAPSE_REVIEW_DATE, "valueDate"), f"{where}.reviewDate"
        ),
    )
