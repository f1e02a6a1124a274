"""The IPT protocol: one `ActivityDefinition` per technique plus the weekly session, and the `PlanDefinition`.

The plan's three phases are actions whose children are derived from the content rather than listed by
hand: a technique or worksheet belongs to a phase when its definition names that phase, and an action
that only suits some problem areas gets an applicability condition on `%focus` (the problem-area code
chosen as the treatment focus, supplied by whoever applies the plan). Adding a worksheet to the content
therefore adds it to the protocol, and the golden files show the change.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mappings.codes import (
    ACTIVITY_DEFINITION_BASE,
    CONTENT_PUBLISHER,
    EXT_SESSION_RANGE,
    GOAL_CATEGORY,
    GOAL_PRIORITY,
    LOINC,
    PHASES,
    PLAN_DEFINITION_BASE,
    PLAN_DEFINITION_TYPE,
    PROBLEM_AREAS,
    RESOURCE_TYPES,
    SNOMED,
    SNOMED_IPT,
    WORKSHEET_SYSTEM,
)
from mappings.questionnaire import Worksheet, use_context
from mappings.terminology import Concept, Terminology

_PATIENT = {"coding": [{"system": RESOURCE_TYPES, "code": "Patient"}]}
_PARTICIPANTS = [{"type": "practitioner"}, {"type": "patient"}]


@dataclass(frozen=True, slots=True)
class Session:
    """The weekly IPT session, as the protocol schedules it."""

    id: str
    version: str
    name: str
    title: str
    description: str
    frequency_per_week: int
    minutes: int
    min_sessions: int
    max_sessions: int

    @property
    def canonical(self) -> str:
        return f"{ACTIVITY_DEFINITION_BASE}/{self.id}|{self.version}"

    def timing(self, *, count: int | None = None) -> dict[str, Any]:
        repeat: dict[str, Any] = {}
        if count is None:
            repeat |= {"count": self.min_sessions, "countMax": self.max_sessions}
        else:
            repeat["count"] = count
        repeat |= {
            "duration": self.minutes,
            "durationUnit": "min",
            "frequency": self.frequency_per_week,
            "period": 1,
            "periodUnit": "wk",
        }
        return {"repeat": repeat}


@dataclass(frozen=True, slots=True)
class Goal:
    id: str
    description: str
    priority: str
    measure_loinc: tuple[str, str] | None = None
    due_weeks: int | None = None


@dataclass(frozen=True, slots=True)
class PhasePlan:
    phase: str
    description: str
    goals: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Protocol:
    session: Session
    technique_version: str
    technique_versions: Mapping[str, str]
    plan_id: str
    plan_version: str
    plan_name: str
    plan_title: str
    plan_description: str
    plan_purpose: str
    plan_usage: str
    goals: tuple[Goal, ...]
    phases: tuple[PhasePlan, ...]

    def technique_canonical(self, technique: str) -> str:
        version = self.technique_versions.get(technique, self.technique_version)
        return f"{ACTIVITY_DEFINITION_BASE}/{technique}|{version}"


def parse_protocol(data: Mapping[str, Any]) -> Protocol:
    """Read the protocol definition (session, technique versions, plan goals and phases)."""
    session = data["session"]
    techniques = data["techniques"]
    plan = data["plan"]
    goals = tuple(
        Goal(
            id=str(g["id"]),
            description=_prose(g["description"]),
            priority=str(g["priority"]),
            measure_loinc=(str(g["measure"]["code"]), str(g["measure"]["display"]))
            if "measure" in g
            else None,
            due_weeks=int(g["due_weeks"]) if "due_weeks" in g else None,
        )
        for g in plan["goals"]
    )
    goal_ids = {g.id for g in goals}
    phases = tuple(
        PhasePlan(phase=str(p["phase"]), description=_prose(p["description"]), goals=tuple(p["goals"]))
        for p in plan["phases"]
    )
    if [p.phase for p in phases] != list(PHASES):
        raise ValueError(f"the plan must list the phases {PHASES} in order")
    for phase in phases:
        if not set(phase.goals) <= goal_ids:
            raise ValueError(f"phase {phase.phase} names unknown goals {sorted(set(phase.goals) - goal_ids)}")
    return Protocol(
        session=Session(
            id=str(session["id"]),
            version=str(session["version"]),
            name=str(session["name"]),
            title=str(session["title"]),
            description=_prose(session["description"]),
            frequency_per_week=int(session["frequency_per_week"]),
            minutes=int(session["minutes"]),
            min_sessions=int(session["min_sessions"]),
            max_sessions=int(session["max_sessions"]),
        ),
        technique_version=str(techniques["version"]),
        technique_versions={str(k): str(v) for k, v in (techniques.get("versions") or {}).items()},
        plan_id=str(plan["id"]),
        plan_version=str(plan["version"]),
        plan_name=str(plan["name"]),
        plan_title=str(plan["title"]),
        plan_description=_prose(plan["description"]),
        plan_purpose=_prose(plan["purpose"]),
        plan_usage=_prose(plan["usage"]),
        goals=goals,
        phases=phases,
    )


def to_session_activity(protocol: Protocol) -> dict[str, Any]:
    """The `ActivityDefinition` of one IPT session (SNOMED CT 443730003, weekly, fixed length)."""
    session = protocol.session
    return {
        "resourceType": "ActivityDefinition",
        "id": session.id,
        "url": f"{ACTIVITY_DEFINITION_BASE}/{session.id}",
        "version": session.version,
        "name": session.name,
        "title": session.title,
        "status": "active",
        "experimental": False,
        "subjectCodeableConcept": _PATIENT,
        "publisher": CONTENT_PUBLISHER,
        "description": session.description,
        "kind": "ServiceRequest",
        "code": {
            "coding": [
                {
                    "system": SNOMED,
                    "code": SNOMED_IPT,
                    "display": "Interpersonal psychotherapy (regime/therapy)",
                }
            ],
            "text": session.title,
        },
        "intent": "plan",
        "timingTiming": session.timing(),
        "participant": _PARTICIPANTS,
    }


def to_technique_activity(protocol: Protocol, technique: Concept, terminology: Terminology) -> dict[str, Any]:
    """The `ActivityDefinition` of one IPT technique, carried out by therapist and client in session."""
    url, _, version = protocol.technique_canonical(technique.code).partition("|")
    return {
        "resourceType": "ActivityDefinition",
        "id": technique.code,
        "url": url,
        "version": version,
        "name": _pascal(technique.code),
        "title": technique.display,
        "status": "active",
        "experimental": False,
        "subjectCodeableConcept": _PATIENT,
        "publisher": CONTENT_PUBLISHER,
        "description": technique.definition,
        "useContext": use_context(_areas(technique), _phases(technique), terminology),
        "kind": "ServiceRequest",
        "code": {"coding": [terminology.coding("ipt-technique", technique.code).to_fhir()]},
        "intent": "plan",
        "participant": _PARTICIPANTS,
    }


def to_plan_definition(
    protocol: Protocol, terminology: Terminology, worksheets: Sequence[Worksheet]
) -> dict[str, Any]:
    """The `PlanDefinition` "IPT for depression": goals, then one action per phase, chained in order."""
    techniques = terminology["ipt-technique"].concepts
    phase_system = terminology["ipt-phase"]
    actions: list[dict[str, Any]] = []
    previous: str | None = None
    for number, phase in enumerate(protocol.phases, start=1):
        concept = phase_system.concept(phase.phase)
        first = int(concept.property_values("first-session")[0])
        last = int(concept.property_values("last-session")[0])
        children = [_session_action(protocol, phase.phase)]
        children += [
            _technique_action(protocol, t, phase.phase, terminology)
            for t in techniques
            if phase.phase in _phases(t)
        ]
        children += [_worksheet_action(w, phase.phase) for w in worksheets if phase.phase in w.phases]
        action: dict[str, Any] = {
            "extension": [
                {"url": EXT_SESSION_RANGE, "valueRange": {"low": {"value": first}, "high": {"value": last}}}
            ],
            "prefix": f"Phase {number}",
            "title": concept.display,
            "description": f"Sessions {first}-{last}. {phase.description}",
            "code": [{"coding": [phase_system.coding(phase.phase).to_fhir()]}],
            "goalId": list(phase.goals),
        }
        if previous:
            action["relatedAction"] = [{"actionId": previous, "relationship": "after-end"}]
        action |= {
            "timingTiming": protocol.session.timing(count=last - first + 1),
            "groupingBehavior": "logical-group",
            "selectionBehavior": "any",
            "requiredBehavior": "must",
            "cardinalityBehavior": "single",
            "action": children,
        }
        actions.append({"id": phase.phase, **action})
        previous = phase.phase
    return {
        "resourceType": "PlanDefinition",
        "id": protocol.plan_id,
        "url": f"{PLAN_DEFINITION_BASE}/{protocol.plan_id}",
        "version": protocol.plan_version,
        "name": protocol.plan_name,
        "title": protocol.plan_title,
        "type": {"coding": [{"system": PLAN_DEFINITION_TYPE, "code": "clinical-protocol"}]},
        "status": "active",
        "experimental": False,
        "subjectCodeableConcept": _PATIENT,
        "publisher": CONTENT_PUBLISHER,
        "description": protocol.plan_description,
        "useContext": use_context(PROBLEM_AREAS, PHASES, terminology),
        "purpose": protocol.plan_purpose,
        "usage": protocol.plan_usage,
        "goal": [_goal_to_fhir(g) for g in protocol.goals],
        "action": actions,
    }


def _session_action(protocol: Protocol, phase: str) -> dict[str, Any]:
    session = protocol.session
    return {
        "id": f"{phase}-session",
        "title": session.title,
        "description": f"One {session.minutes}-minute session a week.",
        "requiredBehavior": "must",
        "definitionCanonical": session.canonical,
    }


def _technique_action(
    protocol: Protocol, technique: Concept, phase: str, terminology: Terminology
) -> dict[str, Any]:
    action: dict[str, Any] = {
        "id": f"{phase}-{technique.code}",
        "title": technique.display,
        "code": [{"coding": [terminology.coding("ipt-technique", technique.code).to_fhir()]}],
    }
    action |= _applicability(_areas(technique))
    action["definitionCanonical"] = protocol.technique_canonical(technique.code)
    return action


def _worksheet_action(worksheet: Worksheet, phase: str) -> dict[str, Any]:
    coding = {"system": WORKSHEET_SYSTEM, "code": worksheet.id, "display": worksheet.title}
    action: dict[str, Any] = {
        "id": f"{phase}-worksheet-{worksheet.id}",
        "title": worksheet.title,
        "code": [{"coding": [coding]}],
    }
    action |= _applicability(worksheet.problem_areas)
    action["definitionCanonical"] = worksheet.canonical
    return action


def _applicability(areas: Sequence[str]) -> dict[str, Any]:
    """A `%focus` condition, unless the action suits every problem area."""
    if set(areas) >= set(PROBLEM_AREAS):
        return {}
    if len(areas) == 1:
        expression = f"%focus = '{areas[0]}'"
    else:
        expression = "%focus in (" + " | ".join(f"'{a}'" for a in areas) + ")"
    description = "Only when the treatment focus is " + " or ".join(areas)
    return {
        "condition": [
            {
                "kind": "applicability",
                "expression": {
                    "description": description,
                    "language": "text/fhirpath",
                    "expression": expression,
                },
            }
        ]
    }


def _goal_to_fhir(goal: Goal) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "id": goal.id,
        "category": {"coding": [{"system": GOAL_CATEGORY, "code": "behavioral"}]},
        "description": {"text": goal.description},
        "priority": {"coding": [{"system": GOAL_PRIORITY, "code": goal.priority}]},
    }
    target: dict[str, Any] = {}
    if goal.measure_loinc:
        code, display = goal.measure_loinc
        target["measure"] = {"coding": [{"system": LOINC, "code": code, "display": display}]}
    if goal.due_weeks is not None:
        target["due"] = {
            "value": goal.due_weeks,
            "unit": "weeks",
            "system": "http://unitsofmeasure.org",
            "code": "wk",
        }
    if target:
        resource["target"] = [target]
    return resource


def _areas(technique: Concept) -> tuple[str, ...]:
    values = {str(v) for v in technique.property_values("problem-area")}
    return tuple(a for a in PROBLEM_AREAS if a in values)


def _phases(technique: Concept) -> tuple[str, ...]:
    values = {str(v) for v in technique.property_values("phase")}
    return tuple(p for p in PHASES if p in values)


def _pascal(code: str) -> str:
    return "".join(part.capitalize() for part in code.replace("_", "-").split("-"))


def _prose(text: Any) -> str:
    return " ".join(str(text).split())
