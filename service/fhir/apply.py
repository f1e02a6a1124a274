"""`PlanDefinition/$apply` for the IPT protocol, as a pure function: definitions in, a draft CarePlan out.

https://hl7.org/fhir/R4/plandefinition-operation-apply.html and https://hl7.org/fhir/R4/plandefinition.html#12.18.3.3:
applying a PlanDefinition to a subject gives a CarePlan that is not stored. This one has `status` draft,
`intent` proposal (FHIR-MAPPING section 2: a proposal until the therapist accepts it) and
`instantiatesCanonical` the PlanDefinition's `url|version`.

Instead of R4's single activity pointing to a RequestGroup, the draft takes the shape of the treatment-plan
mapping (`mappings.careplan`, FHIR-MAPPING section 8 allows this simpler alternative), so that
`mappings.careplan.from_fhir` reads it as a document a therapist can revise and post:

- one `course` activity from the session ActivityDefinition's timing (12 to 16 weekly 50-minute sessions);
- per phase action, a `phase` activity (the phase's sessions, its description as aim), then one `session`
  activity per applicable child action: a technique (its ActivityDefinition's description) or a worksheet
  (`detail.instantiatesCanonical` the Questionnaire); the child that schedules the session itself is the
  phase activity;
- the PlanDefinition's goals as `contained` Goals (proposed), and a `contained` CareTeam holding the
  practitioner (as therapist) and the client.

An action's applicability conditions (`condition.kind = applicability`) are FHIRPath on `%focus`, the
problem-area code chosen as focus. The protocol only writes `%focus = 'code'` and
`%focus in ('a' | 'b')`, and only those are evaluated; any other expression is refused rather than guessed.
Without a focus, `%focus` is empty, so a condition on it is not true and the action is left out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from mappings.codes import (
    PHASE_SYSTEM,
    PHASES,
    PROBLEM_AREA_SYSTEM,
    PROBLEM_AREAS,
    QUESTIONNAIRE_BASE,
    SNOMED,
    SNOMED_IPT,
    SNOMED_MENTAL_HEALTH_CARE_PLAN,
    TECHNIQUE_SYSTEM,
)
from mappings.domain import Coding as DomainCoding
from mappings.domain import Concept, Goal, Target
from mappings.extensions import (
    CARE_TEAM_CATEGORY,
    CARE_TEAM_ROLE_CODING,
    EXT_ACTIVITY_LEVEL,
    EXT_ACTIVITY_TITLE,
    EXT_FOCUS_RANK,
    EXT_PHASE,
    EXT_SESSION_RANGE,
    MENTAL_HEALTH_CARE_PLAN_DISPLAY,
    PHASE_DISPLAY,
    PROBLEM_AREA_DISPLAY,
    SNOMED_IPT_DISPLAY,
    TECHNIQUE_DISPLAY,
)
from mappings.plan_fhir import coding, put_if, security_meta
from mappings.plan_goals import goal_to_fhir
from service.errors import Issue, Unprocessable

__all__ = ["CARE_TEAM_ID", "applies", "apply_plan_definition", "goal_contained_id"]

Json = dict[str, Any]

CARE_TEAM_ID = "careteam"
_EQUALS = re.compile(r"^\s*%focus\s*=\s*'([^']*)'\s*$")
_IN = re.compile(r"^\s*%focus\s+in\s+\((\s*'[^']*'\s*(?:\|\s*'[^']*'\s*)*)\)\s*$")
_QUOTED = re.compile(r"'([^']*)'")
_WORKSHEET_PREFIX = f"{QUESTIONNAIRE_BASE}/"


def goal_contained_id(goal_id: str) -> str:
    return f"goal-{goal_id}"


def applies(action: Json, focus: str | None, where: str) -> bool:
    """Whether every applicability condition of `action` is true for `focus`."""
    for i, condition in enumerate(action.get("condition", [])):
        if condition.get("kind") != "applicability":
            continue
        expression = condition.get("expression") or {}
        at = f"{where}.condition[{i}].expression"
        if expression.get("language") != "text/fhirpath":
            raise Unprocessable(
                Issue(
                    f"only text/fhirpath conditions can be evaluated, not {expression.get('language')!r}",
                    expression=f"{at}.language",
                )
            )
        text = str(expression.get("expression", ""))
        if (match := _EQUALS.match(text)) is not None:
            allowed = {match.group(1)}
        elif (match := _IN.match(text)) is not None:
            allowed = set(_QUOTED.findall(match.group(1)))
        else:
            raise Unprocessable(
                Issue(
                    f"the condition {text!r} is not of a form this server evaluates "
                    "(%focus = 'code' or %focus in ('a' | 'b'))",
                    expression=f"{at}.expression",
                    code="not-supported",
                )
            )
        # FHIRPath: an empty %focus makes `=` and `in` empty, which is not true.
        if focus is None or focus not in allowed:
            return False
    return True


def apply_plan_definition(
    plan_definition: Mapping[str, Any],
    activity_definitions: Mapping[str, Mapping[str, Any]],
    *,
    subject: str,
    practitioner: str | None = None,
    focus: str | None = None,
    conditions: Sequence[str] = (),
) -> Json:
    """The draft CarePlan of the IPT `plan_definition` for `subject` (`Patient/<id>`).

    `activity_definitions` maps each `definitionCanonical` of the actions (as written, `url|version`) to
    its ActivityDefinition; `practitioner` (`Practitioner/<id>`) becomes author, performer and therapist;
    `conditions` (`Condition/<id>`) become `addresses`. Raises `Unprocessable` naming the PlanDefinition
    element it cannot apply.
    """
    if focus is not None and focus not in PROBLEM_AREAS:
        raise Unprocessable(Issue(f"{focus!r} is not an IPT problem area", expression="focus"))
    performer = [] if practitioner is None else [{"reference": practitioner}]
    phases = _phase_actions(plan_definition)
    session = _session_definition(phases, activity_definitions)
    activities = [_course(session, performer)]
    for index, action in phases:
        activities += _phase_activities(action, index, activity_definitions, focus, performer)

    goals = _goals(plan_definition, subject=subject)
    contained: list[Json] = [_care_team(subject, practitioner), *goals]
    careplan: Json = {"resourceType": "CarePlan", "meta": security_meta(), "contained": contained}
    url, version = plan_definition.get("url"), plan_definition.get("version")
    careplan["instantiatesCanonical"] = [f"{url}|{version}" if version else str(url)]
    careplan["status"] = "draft"
    careplan["intent"] = "proposal"
    careplan["category"] = _categories(focus)
    put_if(careplan, "title", plan_definition.get("title"))
    careplan["subject"] = {"reference": subject}
    if practitioner is not None:
        careplan["author"] = {"reference": practitioner}
    careplan["careTeam"] = [{"reference": f"#{CARE_TEAM_ID}"}]
    put_if(careplan, "addresses", [{"reference": c} for c in conditions])
    careplan["goal"] = [{"reference": f"#{goal['id']}"} for goal in goals]
    careplan["activity"] = activities
    return careplan


def _phase_actions(plan_definition: Mapping[str, Any]) -> list[tuple[int, Json]]:
    actions = plan_definition.get("action", [])
    phases = []
    for i, action in enumerate(actions):
        code = _phase_code(action)
        if code is None:
            raise Unprocessable(
                Issue(
                    "every top-level action of the IPT protocol is a phase with an ipt-phase code",
                    expression=f"PlanDefinition.action[{i}].code",
                )
            )
        phases.append((i, action))
    if [_phase_code(a) for _, a in phases] != list(PHASES):
        raise Unprocessable(
            Issue(f"the protocol's phases must be {', '.join(PHASES)}", expression="PlanDefinition.action")
        )
    return phases


def _phase_code(action: Json) -> str | None:
    for concept in action.get("code", []):
        for value in concept.get("coding", []):
            if value.get("system") == PHASE_SYSTEM and value.get("code") in PHASE_DISPLAY:
                return str(value["code"])
    return None


def _is_session(definition: Mapping[str, Any] | None) -> bool:
    codings = ((definition or {}).get("code") or {}).get("coding", [])
    return any(c.get("system") == SNOMED and c.get("code") == SNOMED_IPT for c in codings)


def _session_definition(
    phases: list[tuple[int, Json]], activity_definitions: Mapping[str, Mapping[str, Any]]
) -> Mapping[str, Any]:
    for _, action in phases:
        for child in action.get("action", []):
            definition = activity_definitions.get(str(child.get("definitionCanonical")))
            if _is_session(definition):
                assert definition is not None
                return definition
    raise Unprocessable(
        Issue(
            "no phase schedules the IPT session (an ActivityDefinition coded SNOMED CT 443730003)",
            expression="PlanDefinition.action",
        )
    )


def _repeat(timing: Any, where: str) -> Json:
    repeat = (timing or {}).get("repeat") if isinstance(timing, dict) else None
    if not isinstance(repeat, dict) or not isinstance(repeat.get("count"), int):
        raise Unprocessable(Issue("a timing with repeat.count is required", expression=where))
    return repeat


def _timing(repeat: Json, *, count: int, count_max: int | None = None) -> Json:
    # The key order of `mappings.careplan`, so that the draft equals what the mapping writes.
    result: Json = {"count": count}
    put_if(result, "countMax", count_max)
    for key in ("duration", "durationUnit", "frequency", "period", "periodUnit"):
        put_if(result, key, repeat.get(key))
    return {"repeat": result}


def _course(session: Mapping[str, Any], performer: list[Json]) -> Json:
    repeat = _repeat(session.get("timingTiming"), "ActivityDefinition.timingTiming")
    detail: Json = {
        "kind": "Appointment",
        "code": {"coding": [coding(SNOMED, SNOMED_IPT, SNOMED_IPT_DISPLAY)]},
        "status": "not-started",
        "scheduledTiming": _timing(repeat, count=repeat["count"], count_max=repeat.get("countMax")),
    }
    put_if(detail, "performer", performer)
    return {"extension": [{"url": EXT_ACTIVITY_LEVEL, "valueCode": "course"}], "detail": detail}


def _session_range(action: Json, where: str) -> tuple[int, int]:
    for ext in action.get("extension", []):
        if ext.get("url") == EXT_SESSION_RANGE:
            value = ext.get("valueRange") or {}
            low, high = value.get("low", {}).get("value"), value.get("high", {}).get("value")
            if isinstance(low, int) and isinstance(high, int) and 1 <= low <= high:
                return low, high
    raise Unprocessable(
        Issue(f"the phase needs the {EXT_SESSION_RANGE} extension", expression=f"{where}.extension")
    )


def _phase_activities(
    action: Json,
    index: int,
    activity_definitions: Mapping[str, Mapping[str, Any]],
    focus: str | None,
    performer: list[Json],
) -> list[Json]:
    where = f"PlanDefinition.action[{index}]"
    code = _phase_code(action)
    assert code is not None
    first, last = _session_range(action, where)
    phase_coding = coding(PHASE_SYSTEM, code, PHASE_DISPLAY[code])
    bounds = {"low": {"value": first}, "high": {"value": last}}
    repeat = _repeat(action.get("timingTiming"), f"{where}.timingTiming")
    timing = _timing(repeat, count=last - first + 1)

    def activity(level: str, title: str | None, detail: Json) -> Json:
        ext: list[Json] = [] if title is None else [{"url": EXT_ACTIVITY_TITLE, "valueString": title}]
        ext += [
            {"url": EXT_ACTIVITY_LEVEL, "valueCode": level},
            {"url": EXT_PHASE, "valueCoding": phase_coding},
            {"url": EXT_SESSION_RANGE, "valueRange": bounds},
        ]
        return {"extension": ext, "detail": detail}

    detail: Json = {
        "kind": "Appointment",
        "code": {"coding": [coding(SNOMED, SNOMED_IPT, SNOMED_IPT_DISPLAY), phase_coding]},
        "status": "not-started",
        "scheduledTiming": timing,
    }
    put_if(detail, "performer", performer)
    put_if(detail, "description", action.get("description"))
    result = [activity("phase", action.get("title") or PHASE_DISPLAY[code], detail)]
    for j, child in enumerate(action.get("action", [])):
        child_where = f"{where}.action[{j}]"
        if not applies(child, focus, child_where):
            continue
        canonical = str(child.get("definitionCanonical", ""))
        definition = activity_definitions.get(canonical)
        techniques: list[str] = []
        worksheets: list[str] = []
        description = None
        if canonical.startswith(_WORKSHEET_PREFIX):
            worksheets.append(canonical[len(_WORKSHEET_PREFIX) :].partition("|")[0])
            description = child.get("description")
        elif definition is None:
            raise Unprocessable(
                Issue(
                    f"the ActivityDefinition {canonical!r} is not available on this server",
                    expression=f"{child_where}.definitionCanonical",
                    code="not-found",
                )
            )
        elif _is_session(definition):
            continue  # the phase activity above is these sessions
        else:
            techniques = [
                c["code"]
                for c in (definition.get("code") or {}).get("coding", [])
                if c.get("system") == TECHNIQUE_SYSTEM and c.get("code") in TECHNIQUE_DISPLAY
            ]
            if not techniques:
                raise Unprocessable(
                    Issue(
                        f"the ActivityDefinition {canonical!r} has no IPT technique code",
                        expression=f"{child_where}.definitionCanonical",
                    )
                )
            description = definition.get("description")
        detail = {"kind": "Appointment"}
        put_if(detail, "instantiatesCanonical", [f"{_WORKSHEET_PREFIX}{w}" for w in worksheets])
        detail["code"] = {
            "coding": [
                coding(SNOMED, SNOMED_IPT, SNOMED_IPT_DISPLAY),
                *(coding(TECHNIQUE_SYSTEM, t, TECHNIQUE_DISPLAY[t]) for t in techniques),
            ]
        }
        detail["status"] = "not-started"
        detail["scheduledTiming"] = timing
        put_if(detail, "performer", performer)
        put_if(detail, "description", description)
        title = child.get("title") or (TECHNIQUE_DISPLAY[techniques[0]] if techniques else worksheets[0])
        result.append(activity("session", str(title), detail))
    return result


def _goals(plan_definition: Mapping[str, Any], *, subject: str) -> list[Json]:
    goals = []
    for i, value in enumerate(plan_definition.get("goal", [])):
        where = f"PlanDefinition.goal[{i}]"
        text = (value.get("description") or {}).get("text")
        if not value.get("id") or not text:
            raise Unprocessable(Issue("a protocol goal needs an id and description.text", expression=where))
        targets = []
        for target in value.get("target", []):
            codings = [
                DomainCoding(system=c["system"], code=c["code"], display=c.get("display"))
                for c in (target.get("measure") or {}).get("coding", [])
                if c.get("system") and c.get("code")
            ]
            if codings:
                targets.append(Target(measure=Concept(codings=codings)))
        priority = next(
            (c.get("code") for c in (value.get("priority") or {}).get("coding", [])),
            None,
        )
        goal = Goal(
            description=text,
            lifecycle_status="proposed",
            priority=priority if priority in ("high-priority", "medium-priority", "low-priority") else None,
            targets=targets,
        )
        resource = goal_to_fhir(goal, patient=subject, milestones=[])
        resource.pop("meta", None)
        goals.append({"resourceType": "Goal", "id": goal_contained_id(str(value["id"])), **resource})
    return goals


def _care_team(subject: str, practitioner: str | None) -> Json:
    participants = []
    if practitioner is not None:
        participants.append(
            {
                "role": [{"coding": [dict(CARE_TEAM_ROLE_CODING["therapist"])]}],
                "member": {"reference": practitioner},
            }
        )
    participants.append(
        {"role": [{"coding": [dict(CARE_TEAM_ROLE_CODING["client"])]}], "member": {"reference": subject}}
    )
    return {
        "resourceType": "CareTeam",
        "id": CARE_TEAM_ID,
        "status": "proposed",
        "category": [{"coding": [dict(CARE_TEAM_CATEGORY)]}],
        "subject": {"reference": subject},
        "participant": participants,
    }


def _categories(focus: str | None) -> list[Json]:
    categories: list[Json] = [
        {"coding": [coding(SNOMED, SNOMED_MENTAL_HEALTH_CARE_PLAN, MENTAL_HEALTH_CARE_PLAN_DISPLAY)]}
    ]
    if focus is not None:
        categories.append(
            {
                "extension": [{"url": EXT_FOCUS_RANK, "valueCode": "primary"}],
                "coding": [coding(PROBLEM_AREA_SYSTEM, focus, PROBLEM_AREA_DISPLAY[focus])],
            }
        )
    return categories
