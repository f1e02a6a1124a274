"""Goals, objectives and diagnoses of a treatment plan <-> Goal and Condition.

Each objective is a Goal of its own. Its parent goal names it with the core extension `goal-relationship`,
type `milestone`, whose definition reads "the target goal is considered to be a piece of attaining this
goal": the relationship therefore sits on the parent and targets the objective, one extension per objective
in the document's order. `CarePlan.goal` lists every goal followed by its objectives, so that
`CarePlan?_include=CarePlan:goal` fetches all of them in one search.
"""

from __future__ import annotations

from typing import Any

from mappings.codes import PROBLEM_AREA_SYSTEM
from mappings.domain import Diagnosis, Goal, Objective, ScoreRange, Target
from mappings.extensions import (
    CONDITION_CATEGORY,
    CONDITION_CLINICAL,
    CONDITION_VER_STATUS,
    EXT_GOAL_ACCEPTANCE,
    EXT_GOAL_RELATIONSHIP,
    GOAL_ACHIEVEMENT,
    GOAL_ACHIEVEMENT_DISPLAY,
    GOAL_CATEGORY_BEHAVIORAL,
    GOAL_PRIORITY,
    GOAL_PRIORITY_DISPLAY,
    GOAL_RELATIONSHIP_TYPE,
    MILESTONE,
    PROBLEM_AREA_DISPLAY,
)
from mappings.plan_fhir import (
    Json,
    MappingError,
    Resolver,
    codes_in,
    coding,
    concept_from_fhir,
    concept_to_fhir,
    date_text,
    extensions,
    first_code,
    parse_date,
    put_if,
    reference,
    security_meta,
    whole_number,
)

__all__ = ["condition_from_fhir", "condition_to_fhir", "goal_to_fhir", "goals_from_fhir"]


def goal_to_fhir(goal: Goal | Objective, *, patient: str, milestones: list[str]) -> Json:
    """A Goal resource; `milestones` are the fullUrls of the goal's objectives."""
    resource: Json = {"resourceType": "Goal"}
    put_if(resource, "id", goal.id)
    resource["meta"] = security_meta()
    ext = [
        {
            "url": EXT_GOAL_RELATIONSHIP,
            "extension": [
                {"url": "type", "valueCodeableConcept": {"coding": [dict(MILESTONE)]}},
                {"url": "target", "valueReference": reference(url)},
            ],
        }
        for url in milestones
    ]
    if goal.client_acceptance is not None:
        ext.append(
            {
                "url": EXT_GOAL_ACCEPTANCE,
                "extension": [
                    {"url": "individual", "valueReference": reference(patient)},
                    {"url": "status", "valueCode": goal.client_acceptance},
                ],
            }
        )
    put_if(resource, "extension", ext)
    resource["lifecycleStatus"] = goal.lifecycle_status
    if goal.achievement_status is not None:
        achievement = coding(
            GOAL_ACHIEVEMENT, goal.achievement_status, GOAL_ACHIEVEMENT_DISPLAY[goal.achievement_status]
        )
        resource["achievementStatus"] = {"coding": [achievement]}
    categories = [{"coding": [dict(GOAL_CATEGORY_BEHAVIORAL)]}]
    if goal.problem_area is not None:
        area = coding(PROBLEM_AREA_SYSTEM, goal.problem_area, PROBLEM_AREA_DISPLAY[goal.problem_area])
        categories.append({"coding": [area]})
    resource["category"] = categories
    if goal.priority is not None:
        priority = coding(GOAL_PRIORITY, goal.priority, GOAL_PRIORITY_DISPLAY[goal.priority])
        resource["priority"] = {"coding": [priority]}
    resource["description"] = {"text": goal.description}
    resource["subject"] = reference(patient)
    put_if(resource, "startDate", date_text(goal.start_date))
    put_if(resource, "target", [_target_to_fhir(t) for t in goal.targets])
    put_if(resource, "note", [{"text": text} for text in goal.notes])
    return resource


def goals_from_fhir(careplan: Json, resolver: Resolver) -> list[Goal]:
    """The goals of `CarePlan.goal`, each with the objectives its milestone relationships name."""
    resources: list[tuple[str, Json, str]] = []
    for i, value in enumerate(careplan.get("goal", [])):
        where = f"CarePlan.goal[{i}]"
        resources.append((resolver.key(value), resolver.resolve(value, "Goal", where), where))
    by_key = {key: (resource, where) for key, resource, where in resources}
    milestones = {
        key: [resolver.key(target) for target in _milestone_targets(resource, where)]
        for key, resource, where in resources
    }
    objective_keys = {key for targets in milestones.values() for key in targets}
    goals = []
    for key, resource, where in resources:
        if key in objective_keys:
            continue
        objectives = []
        for target in milestones[key]:
            if target not in by_key:
                raise MappingError(f"{where}: milestone {target!r} is not listed in CarePlan.goal")
            objective, objective_where = by_key[target]
            if milestones[target]:
                raise MappingError(f"{objective_where}: an objective cannot have milestones of its own")
            objectives.append(Objective(**_goal_fields(objective, objective_where)))
        goals.append(Goal(**_goal_fields(resource, where), objectives=objectives))
    return goals


def _milestone_targets(resource: Json, where: str) -> list[Json]:
    targets = []
    for ext in extensions(resource, EXT_GOAL_RELATIONSHIP):
        kind = next(
            (e.get("valueCodeableConcept") for e in ext.get("extension", []) if e.get("url") == "type"), None
        )
        if codes_in(kind, GOAL_RELATIONSHIP_TYPE) != ["milestone"]:
            raise MappingError(f"{where}.extension: only milestone goal relationships are part of a plan")
        target = next(
            (e.get("valueReference") for e in ext.get("extension", []) if e.get("url") == "target"), None
        )
        if target is None:
            raise MappingError(f"{where}.extension: goal-relationship without target")
        targets.append(target)
    return targets


def _goal_fields(resource: Json, where: str) -> dict[str, Any]:
    description = resource.get("description", {}).get("text")
    if description is None:
        raise MappingError(f"{where}: Goal.description.text is missing")
    areas = [code for c in resource.get("category", []) for code in codes_in(c, PROBLEM_AREA_SYSTEM)]
    acceptance = None
    for ext in extensions(resource, EXT_GOAL_ACCEPTANCE):
        acceptance = next(
            (e.get("valueCode") for e in ext.get("extension", []) if e.get("url") == "status"), None
        )
    return {
        "id": resource.get("id"),
        "description": description,
        "lifecycle_status": resource.get("lifecycleStatus"),
        "achievement_status": first_code(resource.get("achievementStatus"), GOAL_ACHIEVEMENT),
        "priority": first_code(resource.get("priority"), GOAL_PRIORITY),
        "problem_area": areas[0] if areas else None,
        "client_acceptance": acceptance,
        "start_date": parse_date(resource.get("startDate"), f"{where}.startDate"),
        "targets": [
            _target_from_fhir(t, f"{where}.target[{i}]") for i, t in enumerate(resource.get("target", []))
        ],
        "notes": [note.get("text") for note in resource.get("note", [])],
    }


def _target_to_fhir(target: Target) -> Json:
    result: Json = {}
    if target.measure is not None:
        result["measure"] = concept_to_fhir(target.measure)
    put_if(result, "detailString", target.detail_text)
    put_if(result, "detailInteger", target.detail_integer)
    if target.detail_range is not None:
        bounds: Json = {}
        if target.detail_range.low is not None:
            bounds["low"] = {"value": target.detail_range.low}
        if target.detail_range.high is not None:
            bounds["high"] = {"value": target.detail_range.high}
        result["detailRange"] = bounds
    put_if(result, "dueDate", date_text(target.due_date))
    return result


def _target_from_fhir(value: Json, where: str) -> Target:
    measure = value.get("measure")
    detail_range = None
    if "detailRange" in value:
        bounds = value["detailRange"]
        low, high = bounds.get("low", {}).get("value"), bounds.get("high", {}).get("value")
        detail_range = ScoreRange(
            low=None if low is None else whole_number(low, f"{where}.detailRange.low.value"),
            high=None if high is None else whole_number(high, f"{where}.detailRange.high.value"),
        )
    return Target(
        measure=None if measure is None else concept_from_fhir(measure, f"{where}.measure"),
        detail_text=value.get("detailString"),
        detail_integer=value.get("detailInteger"),
        detail_range=detail_range,
        due_date=parse_date(value.get("dueDate"), f"{where}.dueDate"),
    )


def condition_to_fhir(diagnosis: Diagnosis, *, patient: str, asserter: str) -> Json:
    resource: Json = {"resourceType": "Condition"}
    put_if(resource, "id", diagnosis.id)
    resource["meta"] = security_meta()
    if diagnosis.clinical_status is not None:
        resource["clinicalStatus"] = {"coding": [coding(CONDITION_CLINICAL, diagnosis.clinical_status)]}
    resource["verificationStatus"] = {"coding": [coding(CONDITION_VER_STATUS, diagnosis.verification_status)]}
    resource["category"] = [{"coding": [coding(CONDITION_CATEGORY, diagnosis.category)]}]
    resource["code"] = concept_to_fhir(diagnosis.code)
    resource["subject"] = reference(patient)
    put_if(resource, "onsetDateTime", date_text(diagnosis.onset_date))
    resource["asserter"] = reference(asserter)
    return resource


def condition_from_fhir(resource: Json, where: str) -> Diagnosis:
    if "code" not in resource:
        raise MappingError(f"{where}: Condition.code is missing")
    categories = [code for c in resource.get("category", []) for code in codes_in(c, CONDITION_CATEGORY)]
    verification = first_code(resource.get("verificationStatus"), CONDITION_VER_STATUS)
    return Diagnosis(
        id=resource.get("id"),
        code=concept_from_fhir(resource["code"], f"{where}.code"),
        clinical_status=first_code(resource.get("clinicalStatus"), CONDITION_CLINICAL),
        verification_status=verification if verification is not None else "unconfirmed",
        category=categories[0] if categories else "problem-list-item",
        onset_date=parse_date(resource.get("onsetDateTime"), f"{where}.onsetDateTime"),
    )
