"""Property: for every valid treatment plan, document -> FHIR JSON text -> document is the identity.

The strategy builds documents that satisfy the document's own rules (session ranges inside the planned
maximum, phases in order, unique identifiers), with every optional field sometimes empty and sometimes set,
and free text drawn from all letters, digits, punctuation and symbols of Unicode.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, get_args

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mappings.careplan import from_fhir_bundle, to_fhir_transaction
from mappings.domain import (
    Acceptance,
    ActivityStatus,
    ClinicalStatus,
    ClinicianRole,
    ConditionCategory,
    Gender,
    GoalAchievement,
    GoalLifecycle,
    GoalPriority,
    PeriodUnit,
    PhaseCode,
    PlanIntent,
    PlanStatus,
    ProblemArea,
    Relationship,
    SupportRole,
    Technique,
    TreatmentPlan,
    VerificationStatus,
)
from mappings.r4 import model_class

Draw = st.DrawFn


def one_of_literal(literal: Any) -> st.SearchStrategy[str]:
    return st.sampled_from(get_args(literal))


def optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


texts = (
    st.text(
        alphabet=st.characters(categories=("L", "N", "P", "S"), include_characters=" \n"),
        min_size=1,
        max_size=12,
    )
    .map(str.strip)
    .filter(bool)
)
dates = st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2100, 12, 31)).map(dt.date.isoformat)
fhir_ids = optional(st.uuids().map(str))
codes = st.from_regex(r"[A-Za-z0-9.\-]{1,8}( [A-Za-z0-9]{1,3})?", fullmatch=True)
systems = st.sampled_from(
    [
        "http://snomed.info/sct",
        "http://hl7.org/fhir/sid/icd-10-cm",
        "urn:oid:2.16.840.1.113883.6.1",
        "http://x.test/a",
    ]
)


@st.composite
def concepts(draw: Draw) -> dict[str, Any]:
    codings = draw(
        st.lists(
            st.fixed_dictionaries({"system": systems, "code": codes}, optional={"display": texts}),
            max_size=3,
            unique_by=lambda c: (c["system"], c["code"]),
        )
    )
    text = draw(optional(texts))
    if not codings and text is None:
        text = draw(texts)
    return {"codings": codings, "text": text}


@st.composite
def names(draw: Draw) -> dict[str, Any]:
    name = {
        "text": draw(optional(texts)),
        "family": draw(optional(texts)),
        "given": draw(st.lists(texts, max_size=2)),
    }
    if not any(name.values()):
        name["text"] = draw(texts)
    return name


class Counter:
    """Makes every drawn identifier value unique, as the document requires."""

    def __init__(self) -> None:
        self.n = 0

    def next(self) -> int:
        self.n += 1
        return self.n


@st.composite
def person(draw: Draw, /, counter: Counter, **extra: st.SearchStrategy[Any]) -> dict[str, Any]:
    identifiers = [
        {"system": draw(systems), "value": f"{draw(texts)}-{counter.next()}"}
        for _ in range(draw(st.integers(1, 2)))
    ]
    result = {"id": draw(fhir_ids), "identifiers": identifiers, "name": draw(names())}
    result.update({key: draw(strategy) for key, strategy in extra.items()})
    return result


@st.composite
def diagnoses(draw: Draw) -> dict[str, Any]:
    verification = draw(one_of_literal(VerificationStatus))
    category = draw(one_of_literal(ConditionCategory))
    if verification == "entered-in-error":
        clinical = None
    elif category == "problem-list-item":
        clinical = draw(one_of_literal(ClinicalStatus))
    else:
        clinical = draw(optional(one_of_literal(ClinicalStatus)))
    return {
        "id": draw(fhir_ids),
        "code": draw(concepts()),
        "clinical_status": clinical,
        "verification_status": verification,
        "category": category,
        "onset_date": draw(optional(dates)),
    }


@st.composite
def targets(draw: Draw) -> dict[str, Any]:
    target: dict[str, Any] = {"measure": draw(optional(concepts())), "due_date": draw(optional(dates))}
    kind = draw(st.sampled_from(["none", "text", "integer", "range"]))
    if kind == "text":
        target["detail_text"] = draw(texts)
    elif kind == "integer":
        target["detail_integer"] = draw(st.integers(-1000, 1000))
    elif kind == "range":
        low, high = sorted(draw(st.lists(st.integers(-50, 50), min_size=2, max_size=2)))
        target["detail_range"] = draw(
            st.sampled_from([{"low": low, "high": high}, {"low": low}, {"high": high}])
        )
    if all(value is None for value in target.values()):
        target["due_date"] = draw(dates)
    return target


@st.composite
def goal_fields(draw: Draw) -> dict[str, Any]:
    return {
        "id": draw(fhir_ids),
        "description": draw(texts),
        "lifecycle_status": draw(one_of_literal(GoalLifecycle)),
        "achievement_status": draw(optional(one_of_literal(GoalAchievement))),
        "priority": draw(optional(one_of_literal(GoalPriority))),
        "problem_area": draw(optional(one_of_literal(ProblemArea))),
        "client_acceptance": draw(optional(one_of_literal(Acceptance))),
        "start_date": draw(optional(dates)),
        "targets": draw(st.lists(targets(), max_size=2)),
        "notes": draw(st.lists(texts, max_size=2)),
    }


@st.composite
def goals(draw: Draw) -> dict[str, Any]:
    return {**draw(goal_fields()), "objectives": draw(st.lists(goal_fields(), max_size=2))}


@st.composite
def session_activities(draw: Draw) -> dict[str, Any]:
    return {
        "title": draw(texts),
        "description": draw(optional(texts)),
        "techniques": draw(st.lists(one_of_literal(Technique), max_size=3, unique=True)),
        "worksheets": draw(
            st.lists(
                st.from_regex(r"[a-z0-9]{1,6}(-[a-z0-9]{1,6})?", fullmatch=True), max_size=2, unique=True
            )
        ),
        "status": draw(one_of_literal(ActivityStatus)),
    }


@st.composite
def ranges_within(draw: Draw, first: int, last: int, most: int) -> list[dict[str, int]]:
    """Ordered, non-overlapping session ranges inside first..last."""
    result = []
    cursor = first
    for _ in range(draw(st.integers(0, most))):
        if cursor > last:
            break
        start = draw(st.integers(cursor, last))
        end = draw(st.integers(start, min(last, start + 4)))
        result.append({"first": start, "last": end})
        cursor = end + 1
    return result


@st.composite
def phases(draw: Draw, sessions_max: int) -> list[dict[str, Any]]:
    codes_used = [code for code in get_args(PhaseCode) if draw(st.booleans())]
    result = []
    ranges = draw(ranges_within(1, sessions_max, len(codes_used)))
    for code, sessions in zip(codes_used, ranges, strict=False):
        blocks = [
            {"sessions": block, "activities": draw(st.lists(session_activities(), min_size=1, max_size=2))}
            for block in draw(ranges_within(sessions["first"], sessions["last"], 3))
        ]
        result.append(
            {
                "code": code,
                "title": draw(optional(texts)),
                "aim": draw(optional(texts)),
                "sessions": sessions,
                "status": draw(one_of_literal(ActivityStatus)),
                "blocks": blocks,
            }
        )
    return result


@st.composite
def relapse_plans(draw: Draw) -> dict[str, Any]:
    plan = {
        "warning_signs": draw(st.lists(texts, max_size=2)),
        "supports": draw(
            st.lists(
                st.fixed_dictionaries(
                    {"name": texts, "relationship": optional(texts), "contact": optional(texts)}
                ),
                max_size=2,
            )
        ),
        "strategies": draw(st.lists(texts, max_size=2)),
        "skills": draw(
            st.lists(st.fixed_dictionaries({"skill": texts, "when": optional(texts)}), max_size=2)
        ),
        "long_term_goals": draw(st.lists(texts, max_size=2)),
        "if_symptoms_return": draw(optional(texts)),
        "review_date": draw(optional(dates)),
    }
    if not any(plan.values()):
        plan["warning_signs"] = [draw(texts)]
    return plan


@st.composite
def treatment_plans(draw: Draw) -> TreatmentPlan:
    counter = Counter()
    sessions_max = draw(st.integers(1, 24))
    areas = draw(st.lists(one_of_literal(ProblemArea), max_size=4, unique=True))
    period = draw(optional(st.lists(dates, min_size=2, max_size=2).map(sorted)))
    data = {
        "id": draw(fhir_ids),
        "status": draw(one_of_literal(PlanStatus)),
        "intent": draw(one_of_literal(PlanIntent)),
        "title": draw(optional(texts)),
        "date": draw(optional(dates)),
        "period": None
        if period is None
        else draw(
            st.sampled_from(
                [{"start": period[0], "end": period[1]}, {"start": period[0]}, {"end": period[1]}]
            )
        ),
        "client": draw(person(counter, birth_date=optional(dates), gender=optional(one_of_literal(Gender)))),
        "diagnoses": draw(st.lists(diagnoses(), min_size=1, max_size=2)),
        "therapist": draw(person(counter, credentials=st.lists(texts, max_size=2))),
        "care_team": {
            "id": draw(fhir_ids),
            "name": draw(optional(texts)),
            "include_client": draw(st.booleans()),
            "clinicians": draw(
                st.lists(
                    person(
                        counter, credentials=st.lists(texts, max_size=1), role=one_of_literal(ClinicianRole)
                    ),
                    max_size=2,
                )
            ),
            "support_persons": draw(
                st.lists(
                    person(
                        counter, relationship=one_of_literal(Relationship), role=one_of_literal(SupportRole)
                    ),
                    max_size=2,
                )
            ),
        },
        "presenting_problem": draw(optional(texts)),
        "primary_focus": areas[0] if areas else None,
        "secondary_foci": areas[1:],
        "goals": draw(st.lists(goals(), max_size=3)),
        "structure": {
            "frequency": draw(st.integers(1, 14)),
            "period": draw(st.integers(1, 12)),
            "period_unit": draw(one_of_literal(PeriodUnit)),
            "session_minutes": draw(st.integers(5, 240)),
            "sessions_min": draw(st.integers(1, sessions_max)),
            "sessions_max": sessions_max,
        },
        "phases": draw(phases(sessions_max)),
        "interventions": draw(
            st.lists(
                st.fixed_dictionaries(
                    {
                        "title": texts,
                        "description": optional(texts),
                        "techniques": st.lists(one_of_literal(Technique), max_size=2, unique=True),
                    }
                ),
                max_size=2,
            )
        ),
        "progress_monitoring": draw(
            st.lists(
                st.fixed_dictionaries(
                    {"instrument": concepts(), "cadence": optional(texts), "description": optional(texts)}
                ),
                max_size=2,
            )
        ),
        "prognosis": draw(optional(texts)),
        "relapse_prevention": draw(optional(relapse_plans())),
        "notes": draw(st.lists(texts, max_size=2)),
    }
    return TreatmentPlan.model_validate(data)


class TestRoundTripProperty:
    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(plan=treatment_plans())
    def test_document_to_fhir_to_document_is_lossless(self, plan: TreatmentPlan) -> None:
        bundle = json.loads(json.dumps(to_fhir_transaction(plan), ensure_ascii=False))
        model_class("Bundle").model_validate(bundle)
        for entry in bundle["entry"]:
            model_class(entry["resource"]["resourceType"]).model_validate(entry["resource"])
        full_urls = {entry["fullUrl"] for entry in bundle["entry"]}
        assert set(_references(bundle)) <= full_urls
        assert from_fhir_bundle(bundle) == plan

    @settings(max_examples=50, deadline=None)
    @given(plan=treatment_plans())
    def test_the_document_survives_its_own_json(self, plan: TreatmentPlan) -> None:
        assert TreatmentPlan.model_validate_json(plan.model_dump_json()) == plan


def _references(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [
            item for key, sub in value.items() for item in ([sub] if key == "reference" else _references(sub))
        ]
    if isinstance(value, list):
        return [item for sub in value for item in _references(sub)]
    return []
