"""The IPT treatment plan in the shape therapists write it.

`TreatmentPlan` is the document of the `/ipt/treatment-plans` API: client, diagnoses, therapist and care team,
dates, presenting problem, focus problem areas, goals with objectives, therapy structure, phases with session
blocks, interventions, progress monitoring, prognosis and the relapse-prevention plan. `mappings.careplan`
maps it to a FHIR transaction Bundle and back without loss.

Validation names the failing field: cross-field rules (session ranges inside the planned maximum, phases in
order, unique identifiers ...) raise errors located at the offending field, e.g.
`phases.1.sessions.last`, not at the plan as a whole.

Usage:

    plan = TreatmentPlan.model_validate_json(body)
    bundle = to_fhir_transaction(plan)
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from importlib import resources
from typing import Annotated, Any, Literal, NoReturn, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

__all__ = [
    "CareTeam",
    "Client",
    "Clinician",
    "Coding",
    "Concept",
    "Diagnosis",
    "Goal",
    "Identifier",
    "Intervention",
    "Monitoring",
    "Objective",
    "Period",
    "PersonName",
    "Phase",
    "RelapsePrevention",
    "ScoreRange",
    "SessionActivity",
    "SessionBlock",
    "SessionRange",
    "SkillPlan",
    "Structure",
    "SupportContact",
    "SupportPerson",
    "Target",
    "TeamClinician",
    "TreatmentPlan",
]

# FHIR `string`: at least one non-whitespace character and no control characters but tab, CR and LF.
# Surrounding whitespace is stripped, as FHIR servers commonly do, so a stored plan reads back equal.
Text: TypeAlias = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20_000, pattern=r"^[ \r\n\t\S]+$")
]
# FHIR `code`, `uri` (absolute, as a code system or identifier system must be) and `id`.
Code: TypeAlias = Annotated[str, StringConstraints(max_length=256, pattern=r"^\S+( \S+)*$")]
Uri: TypeAlias = Annotated[str, StringConstraints(max_length=1024, pattern=r"^[A-Za-z][A-Za-z0-9+.\-]*:\S+$")]
FhirId: TypeAlias = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9\-.]{1,64}$")]
WorksheetId: TypeAlias = Annotated[str, StringConstraints(max_length=64, pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$")]
SessionNumber: TypeAlias = Annotated[int, Field(ge=1, le=200)]

ProblemArea: TypeAlias = Literal["grief", "role-dispute", "role-transition", "interpersonal-deficits"]
PhaseCode: TypeAlias = Literal["initial", "intermediate", "termination"]
Technique: TypeAlias = Literal[
    "interpersonal-inventory",
    "communication-analysis",
    "role-play",
    "imagery-rescripting",
    "grief-analysis",
    "guided-imagery",
    "social-skills-training",
    "feeling-statements",
    "decision-analysis",
    "clarification",
    "encouragement-of-affect",
    "support-network",
    "psychoeducation",
    "problem-solving",
    "cognitive-restructuring",
    "assertiveness-training",
    "mindfulness",
    "dbt-skills",
    "journaling",
    "role-exploration",
    "attachment-exploration",
    "validation",
    "goal-setting",
    "relapse-prevention",
]
PlanStatus: TypeAlias = Literal[
    "draft", "active", "on-hold", "revoked", "completed", "entered-in-error", "unknown"
]
PlanIntent: TypeAlias = Literal["proposal", "plan", "order", "option"]
ActivityStatus: TypeAlias = Literal[
    "not-started",
    "scheduled",
    "in-progress",
    "on-hold",
    "completed",
    "cancelled",
    "stopped",
    "unknown",
    "entered-in-error",
]
GoalLifecycle: TypeAlias = Literal[
    "proposed",
    "planned",
    "accepted",
    "active",
    "on-hold",
    "completed",
    "cancelled",
    "entered-in-error",
    "rejected",
]
GoalAchievement: TypeAlias = Literal[
    "in-progress",
    "improving",
    "worsening",
    "no-change",
    "achieved",
    "sustaining",
    "not-achieved",
    "no-progress",
    "not-attainable",
]
GoalPriority: TypeAlias = Literal["high-priority", "medium-priority", "low-priority"]
Acceptance: TypeAlias = Literal["agree", "disagree", "pending"]
Gender: TypeAlias = Literal["male", "female", "other", "unknown"]
ClinicianRole: TypeAlias = Literal["therapist", "supervisor", "psychiatrist"]
SupportRole: TypeAlias = Literal["family-member", "caregiver", "friend"]
Relationship: TypeAlias = Literal[
    "FAMMEMB", "FTH", "MTH", "PRN", "SIB", "CHILD", "SPS", "SIGOTHR", "FRND", "GUARD", "NOK", "ECON"
]
ClinicalStatus: TypeAlias = Literal["active", "recurrence", "relapse", "inactive", "remission", "resolved"]
VerificationStatus: TypeAlias = Literal[
    "unconfirmed", "provisional", "differential", "confirmed", "refuted", "entered-in-error"
]
ConditionCategory: TypeAlias = Literal["problem-list-item", "encounter-diagnosis"]
PeriodUnit: TypeAlias = Literal["d", "wk", "mo"]

Loc: TypeAlias = tuple[str | int, ...]


def _fail(title: str, problems: list[tuple[Loc, str, object]]) -> NoReturn:
    # A ValidationError raised inside a validator keeps its own locations and pydantic prefixes them with the
    # path of the enclosing model, so each message lands on the field at fault instead of on the whole model.
    raise ValidationError.from_exception_data(
        title,
        [
            InitErrorDetails(type=PydanticCustomError("ipt_plan", message), loc=loc, input=value)
            for loc, message, value in problems
        ],
    )


def _check(title: str, problems: list[tuple[Loc, str, object]]) -> None:
    if problems:
        _fail(title, problems)


def _at_least_one(model: BaseModel, *fields: str) -> None:
    if all(getattr(model, name) in (None, []) for name in fields):
        names = ", ".join(f"`{name}`" for name in fields)
        _fail(type(model).__name__, [((fields[0],), f"give at least one of {names}", None)])


def _duplicates(values: list[Any]) -> Iterator[int]:
    seen: set[Any] = set()
    for index, value in enumerate(values):
        if value in seen:
            yield index
        seen.add(value)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)


class Coding(_Model):
    """A code from a terminology, e.g. ICD-10-CM `F43.21`."""

    system: Uri
    """Canonical URI of the code system, e.g. `http://hl7.org/fhir/sid/icd-10-cm`."""
    code: Code
    display: Text | None = None


class Concept(_Model):
    """A coded concept, free text, or both."""

    codings: list[Coding] = []
    text: Text | None = None

    @model_validator(mode="after")
    def _check_concept(self) -> Concept:
        _at_least_one(self, "codings", "text")
        keys = [(c.system, c.code) for c in self.codings]
        _check(
            "Concept",
            [(("codings", i), "the same system and code appear twice", keys[i]) for i in _duplicates(keys)],
        )
        return self


class Identifier(_Model):
    """A business identifier (medical record number, licence number ...); people are matched by it."""

    system: Uri
    value: Text


class PersonName(_Model):
    text: Text | None = None
    """The name as written, e.g. `Dr. Robin Hale, Ph.D.`."""
    family: Text | None = None
    given: list[Text] = []

    @model_validator(mode="after")
    def _check_name(self) -> PersonName:
        _at_least_one(self, "text", "family", "given")
        return self


class _Person(_Model):
    id: FhirId | None = None
    """FHIR id of the stored resource; set when the plan was read back from the server."""
    identifiers: list[Identifier] = Field(min_length=1)
    """At least one; the first is the conditional-create key (`identifier=system|value`)."""
    name: PersonName


class Client(_Person):
    """The client (FHIR Patient)."""

    birth_date: dt.date | None = None
    """Age is derived from it; FHIR stores no age."""
    gender: Gender | None = None


class Clinician(_Person):
    """A therapist, supervisor or psychiatrist (FHIR Practitioner)."""

    credentials: list[Text] = []
    """Degrees and licences as written, e.g. `Ph.D.`."""


class TeamClinician(Clinician):
    role: ClinicianRole
    """`psychiatrist` covers any prescriber of the team."""


class SupportPerson(_Person):
    """A family member or other support person who takes part in the care (FHIR RelatedPerson)."""

    relationship: Relationship
    """v3-RoleCode relationship to the client, e.g. `FTH` father, `FRND` friend."""
    role: SupportRole = "family-member"


class CareTeam(_Model):
    """Everyone besides the therapist who takes part: the therapist leads the team implicitly."""

    id: FhirId | None = None
    name: Text | None = None
    include_client: bool = True
    """Whether the client is a listed member of the team (IPT plans are collaborative)."""
    clinicians: list[TeamClinician] = []
    support_persons: list[SupportPerson] = []


class Diagnosis(_Model):
    """A diagnosis the plan addresses (FHIR Condition)."""

    id: FhirId | None = None
    code: Concept
    """ICD-10-CM, SNOMED CT and, for legacy systems, ICD-9-CM codings of one diagnosis."""
    clinical_status: ClinicalStatus | None = "active"
    verification_status: VerificationStatus = "confirmed"
    category: ConditionCategory = "problem-list-item"
    onset_date: dt.date | None = None

    @model_validator(mode="after")
    def _check_statuses(self) -> Diagnosis:
        # FHIR invariants con-3 and con-5 tie the clinical status to the verification status.
        if self.verification_status == "entered-in-error" and self.clinical_status is not None:
            _fail("Diagnosis", [(("clinical_status",), "must be empty when entered in error", None)])
        if (
            self.verification_status != "entered-in-error"
            and self.category == "problem-list-item"
            and self.clinical_status is None
        ):
            _fail("Diagnosis", [(("clinical_status",), "is required for a problem-list diagnosis", None)])
        return self


class ScoreRange(_Model):
    """An inclusive range of scores, e.g. PHQ-9 total 0-4."""

    low: int | None = None
    high: int | None = None

    @model_validator(mode="after")
    def _check_range(self) -> ScoreRange:
        _at_least_one(self, "low", "high")
        if self.low is not None and self.high is not None and self.low > self.high:
            _fail("ScoreRange", [(("high",), f"{self.high} is below low {self.low}", self.high)])
        return self


class Target(_Model):
    """A measurable target of a goal: what is measured, the value aimed for, and when."""

    measure: Concept | None = None
    """E.g. LOINC 44261-6 PHQ-9 total score, or text such as `new acquaintances`."""
    detail_text: Text | None = None
    detail_integer: int | None = None
    detail_range: ScoreRange | None = None
    due_date: dt.date | None = None

    @model_validator(mode="after")
    def _check_target(self) -> Target:
        _at_least_one(self, "measure", "detail_text", "detail_integer", "detail_range", "due_date")
        details = [
            n for n in ("detail_text", "detail_integer", "detail_range") if getattr(self, n) is not None
        ]
        if len(details) > 1:
            _fail("Target", [((details[1],), f"give only one of {', '.join(details)}", None)])
        return self


class _GoalFields(_Model):
    id: FhirId | None = None
    description: Text
    lifecycle_status: GoalLifecycle = "active"
    """A goal the client has not chosen yet (repair a relationship, if he wants to) stays `proposed`."""
    achievement_status: GoalAchievement | None = None
    priority: GoalPriority | None = None
    problem_area: ProblemArea | None = None
    client_acceptance: Acceptance | None = None
    """The client's agreement with the goal."""
    start_date: dt.date | None = None
    targets: list[Target] = []
    notes: list[Text] = []


class Objective(_GoalFields):
    """A step towards a goal (its own FHIR Goal, a milestone of the parent)."""


class Goal(_GoalFields):
    """A numbered IPT goal with its objectives."""

    objectives: list[Objective] = []


class Structure(_Model):
    """How often, how long and how many sessions."""

    frequency: int = Field(default=1, ge=1, le=14)
    """Sessions per `period`."""
    period: int = Field(default=1, ge=1, le=12)
    period_unit: PeriodUnit = "wk"
    session_minutes: int = Field(default=50, ge=5, le=240)
    sessions_min: SessionNumber = 12
    sessions_max: SessionNumber = 16
    """The exact number within min-max is set by progress."""

    @model_validator(mode="after")
    def _check_counts(self) -> Structure:
        if self.sessions_min > self.sessions_max:
            _fail(
                "Structure",
                [(("sessions_max",), f"{self.sessions_max} is below sessions_min {self.sessions_min}", None)],
            )
        return self


class SessionRange(_Model):
    """Session numbers `first`-`last`, both inclusive and counted from 1."""

    first: SessionNumber
    last: SessionNumber

    @model_validator(mode="after")
    def _check_order(self) -> SessionRange:
        if self.first > self.last:
            _fail("SessionRange", [(("last",), f"session {self.last} comes before first {self.first}", None)])
        return self

    def overlaps(self, other: SessionRange) -> bool:
        return self.first <= other.last and other.first <= self.last

    def __str__(self) -> str:
        return f"{self.first}-{self.last}"


class SessionActivity(_Model):
    """One thing done in each session of a block, with its techniques and the worksheets assigned."""

    title: Text
    description: Text | None = None
    techniques: list[Technique] = []
    worksheets: list[WorksheetId] = []
    """Worksheet ids; each is the Questionnaire `{IPT_BASE}/Questionnaire/<id>`."""
    status: ActivityStatus = "not-started"

    @model_validator(mode="after")
    def _check_unique(self) -> SessionActivity:
        problems: list[tuple[Loc, str, object]] = [
            (("techniques", i), "listed twice", self.techniques[i]) for i in _duplicates(self.techniques)
        ]
        problems += [
            (("worksheets", i), "listed twice", self.worksheets[i]) for i in _duplicates(self.worksheets)
        ]
        _check("SessionActivity", problems)
        return self


class SessionBlock(_Model):
    """Consecutive sessions that share their activities, e.g. sessions 5-7."""

    sessions: SessionRange
    activities: list[SessionActivity] = Field(min_length=1)


class Phase(_Model):
    """One of the three IPT phases with its session range, aim and session blocks."""

    code: PhaseCode
    title: Text | None = None
    aim: Text | None = None
    sessions: SessionRange
    status: ActivityStatus = "not-started"
    blocks: list[SessionBlock] = []
    """In session order, without overlaps, inside the phase's sessions."""

    @model_validator(mode="after")
    def _check_blocks(self) -> Phase:
        problems: list[tuple[Loc, str, object]] = []
        for i, block in enumerate(self.blocks):
            if block.sessions.first < self.sessions.first or block.sessions.last > self.sessions.last:
                problems.append(
                    (
                        ("blocks", i, "sessions"),
                        f"sessions {block.sessions} lie outside the phase's sessions {self.sessions}",
                        str(block.sessions),
                    )
                )
            if i and block.sessions.first <= self.blocks[i - 1].sessions.last:
                problems.append(
                    (
                        ("blocks", i, "sessions"),
                        f"sessions {block.sessions} must start after the previous block "
                        f"({self.blocks[i - 1].sessions})",
                        str(block.sessions),
                    )
                )
        _check("Phase", problems)
        return self


class Intervention(_Model):
    """A technique family the therapist plans to use across sessions."""

    title: Text
    description: Text | None = None
    techniques: list[Technique] = []


class Monitoring(_Model):
    """How progress is measured: an instrument and how often."""

    instrument: Concept
    """E.g. LOINC 44249-1 PHQ-9, or text such as `therapist observation`."""
    cadence: Text | None = None
    """As written, e.g. `every session`, `every fourth session`."""
    description: Text | None = None


class SupportContact(_Model):
    name: Text
    relationship: Text | None = None
    contact: Text | None = None


class SkillPlan(_Model):
    skill: Text
    when: Text | None = None


class RelapsePrevention(_Model):
    """The plan built in the last sessions against sliding back."""

    warning_signs: list[Text] = []
    supports: list[SupportContact] = []
    strategies: list[Text] = []
    """Strategies that helped during treatment."""
    skills: list[SkillPlan] = []
    """Communication and problem-solving skills to keep using."""
    long_term_goals: list[Text] = []
    if_symptoms_return: Text | None = None
    review_date: dt.date | None = None

    @model_validator(mode="after")
    def _check_not_empty(self) -> RelapsePrevention:
        _at_least_one(self, *type(self).model_fields)
        return self


class Period(_Model):
    start: dt.date | None = None
    end: dt.date | None = None

    @model_validator(mode="after")
    def _check_period(self) -> Period:
        _at_least_one(self, "start", "end")
        if self.start is not None and self.end is not None and self.start > self.end:
            _fail("Period", [(("end",), f"{self.end} is before start {self.start}", str(self.end))])
        return self


def _add_sample_example(schema: dict[str, Any]) -> None:
    # Read when the JSON Schema is generated (OpenAPI build), never at import: mappings does no I/O itself.
    sample = resources.files("mappings").joinpath("samples/sample_plan.json").read_text(encoding="utf-8")
    schema["examples"] = [json.loads(sample)]


class TreatmentPlan(_Model):
    """An IPT treatment plan as a therapist writes it."""

    model_config = ConfigDict(json_schema_extra=_add_sample_example, title="TreatmentPlan")

    id: FhirId | None = None
    """FHIR id of the CarePlan; set when the plan was read back from the server."""
    status: PlanStatus = "draft"
    intent: PlanIntent = "plan"
    title: Text | None = None
    date: dt.date | None = None
    """The date the plan was written."""
    period: Period | None = None
    """Planned start and end of the treatment."""
    client: Client
    diagnoses: list[Diagnosis] = Field(min_length=1)
    therapist: Clinician
    """The therapist who writes and owns the plan."""
    care_team: CareTeam = Field(default_factory=CareTeam)
    presenting_problem: Text | None = None
    primary_focus: ProblemArea | None = None
    secondary_foci: list[ProblemArea] = []
    goals: list[Goal] = []
    structure: Structure = Field(default_factory=Structure)
    phases: list[Phase] = []
    """In treatment order (`initial`, `intermediate`, `termination`), each phase's sessions after the last."""
    interventions: list[Intervention] = []
    progress_monitoring: list[Monitoring] = []
    prognosis: Text | None = None
    relapse_prevention: RelapsePrevention | None = None
    notes: list[Text] = []

    @model_validator(mode="after")
    def _check_plan(self) -> TreatmentPlan:
        problems = self._focus_problems() + self._phase_problems()
        problems += self._identifier_problems() + self._id_problems()
        _check("TreatmentPlan", problems)
        return self

    def _focus_problems(self) -> list[tuple[Loc, str, object]]:
        problems: list[tuple[Loc, str, object]] = []
        if self.secondary_foci and self.primary_focus is None:
            problems.append((("primary_focus",), "is required when secondary_foci are given", None))
        for i, area in enumerate(self.secondary_foci):
            if area == self.primary_focus:
                problems.append((("secondary_foci", i), f"{area!r} is already the primary focus", area))
        problems += [
            (("secondary_foci", i), "listed twice", self.secondary_foci[i])
            for i in _duplicates(self.secondary_foci)
        ]
        return problems

    def _phase_problems(self) -> list[tuple[Loc, str, object]]:
        problems: list[tuple[Loc, str, object]] = []
        order: tuple[PhaseCode, ...] = ("initial", "intermediate", "termination")
        for i, phase in enumerate(self.phases):
            if phase.sessions.last > self.structure.sessions_max:
                problems.append(
                    (
                        ("phases", i, "sessions", "last"),
                        f"session {phase.sessions.last} is after structure.sessions_max "
                        f"{self.structure.sessions_max}",
                        phase.sessions.last,
                    )
                )
            if i == 0:
                continue
            previous = self.phases[i - 1]
            if order.index(phase.code) <= order.index(previous.code):
                problems.append(
                    (("phases", i, "code"), f"{phase.code!r} cannot follow {previous.code!r}", phase.code)
                )
            if phase.sessions.first <= previous.sessions.last:
                problems.append(
                    (
                        ("phases", i, "sessions", "first"),
                        f"session {phase.sessions.first} must come after the previous phase "
                        f"(sessions {previous.sessions})",
                        phase.sessions.first,
                    )
                )
        return problems

    def _people(self) -> Iterator[tuple[Loc, str, _Person]]:
        """Every person of the plan with its location and FHIR resource type."""
        yield ("client",), "Patient", self.client
        yield ("therapist",), "Practitioner", self.therapist
        for i, clinician in enumerate(self.care_team.clinicians):
            yield ("care_team", "clinicians", i), "Practitioner", clinician
        for i, person in enumerate(self.care_team.support_persons):
            yield ("care_team", "support_persons", i), "RelatedPerson", person

    def _identifier_problems(self) -> list[tuple[Loc, str, object]]:
        # One transaction cannot conditionally create two resources with the same identifier search.
        problems: list[tuple[Loc, str, object]] = []
        seen: dict[tuple[str, str], Loc] = {}
        for loc, _, person in self._people():
            for j, identifier in enumerate(person.identifiers):
                key = (identifier.system, identifier.value)
                if key in seen:
                    where = ".".join(str(part) for part in seen[key])
                    problems.append(
                        ((*loc, "identifiers", j), f"identifier already used by {where}", identifier.value)
                    )
                else:
                    seen[key] = loc
        return problems

    def _id_problems(self) -> list[tuple[Loc, str, object]]:
        problems: list[tuple[Loc, str, object]] = []
        ids: dict[tuple[str, str], Loc] = {}

        def claim(resource_type: str, resource_id: str | None, loc: Loc) -> None:
            if resource_id is None:
                return
            if (resource_type, resource_id) in ids:
                where = ".".join(str(part) for part in ids[(resource_type, resource_id)])
                problems.append(((*loc, "id"), f"{resource_type} id already used by {where}", resource_id))
            ids[(resource_type, resource_id)] = loc

        for loc, resource_type, person in self._people():
            claim(resource_type, person.id, loc)
        for i, diagnosis in enumerate(self.diagnoses):
            claim("Condition", diagnosis.id, ("diagnoses", i))
        for i, goal in enumerate(self.goals):
            claim("Goal", goal.id, ("goals", i))
            for j, objective in enumerate(goal.objectives):
                claim("Goal", objective.id, ("goals", i, "objectives", j))
        return problems
