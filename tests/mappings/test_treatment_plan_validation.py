"""Validation of the treatment-plan document: each error is located at the field at fault."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, get_args

import pytest
from pydantic import ValidationError

from mappings.codes import PHASES, PROBLEM_AREAS
from mappings.domain import PhaseCode, ProblemArea, Technique, TreatmentPlan
from mappings.extensions import PHASE_DISPLAY, PROBLEM_AREA_DISPLAY, TECHNIQUE_DISPLAY

SAMPLE = Path(__file__).resolve().parents[2] / "mappings" / "samples" / "sample_plan.json"


def sample() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SAMPLE.read_text(encoding="utf-8"))
    return data


def errors_of(data: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        TreatmentPlan.model_validate(data)
    return {".".join(str(part) for part in e["loc"]): e["msg"] for e in caught.value.errors()}


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = data
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        target[int(last) if last.isdigit() else last] = value

    return change


CASES: list[tuple[str, Callable[[dict[str, Any]], None], str, str]] = [
    ("unknown problem area", _set("primary_focus", "loneliness"), "primary_focus", "'grief'"),
    (
        "secondary repeats primary",
        _set("secondary_foci", ["grief"]),
        "secondary_foci.0",
        "already the primary focus",
    ),
    (
        "phase beyond the planned maximum",
        _set("phases.2.sessions.last", 18),
        "phases.2.sessions.last",
        "after structure.sessions_max 16",
    ),
    (
        "phases out of order",
        _set("phases.1.code", "initial"),
        "phases.1.code",
        "cannot follow 'initial'",
    ),
    (
        "overlapping phases",
        _set("phases.1.sessions.first", 4),
        "phases.1.sessions.first",
        "must come after the previous phase",
    ),
    (
        "block outside its phase",
        _set("phases.0.blocks.2.sessions", {"first": 4, "last": 5}),
        "phases.0.blocks.2.sessions",
        "outside the phase's sessions 1-4",
    ),
    (
        "reversed session range",
        _set("phases.0.sessions", {"first": 4, "last": 1}),
        "phases.0.sessions.last",
        "comes before first",
    ),
    ("min above max", _set("structure.sessions_min", 20), "structure.sessions_max", "below sessions_min 20"),
    (
        "unknown technique",
        _set("interventions.0.techniques", ["hypnosis"]),
        "interventions.0.techniques.0",
        "",
    ),
    (
        "duplicate identifier",
        _set(
            "therapist.identifiers",
            [{"system": "http://clinic.example.org/fhir/sid/mrn", "value": "MRN-20417"}],
        ),
        "therapist.identifiers.0",
        "already used by client",
    ),
    ("blank text", _set("presenting_problem", "   "), "presenting_problem", "at least 1 character"),
    ("bad FHIR id", _set("goals.0.id", "has space"), "goals.0.id", "pattern"),
    ("duplicate goal id", _set("goals.1.objectives.0.id", "g1"), "goals.1.objectives.0.id", "already used"),
    (
        "two target details",
        _set("goals.1.targets.0.detail_text", "one"),
        "goals.1.targets.0.detail_integer",
        "only one",
    ),
    ("person without identifier", _set("client.identifiers", []), "client.identifiers", "at least 1 item"),
    ("unknown field", _set("client.age", 33), "client.age", "Extra inputs"),
    (
        "entered in error keeps a clinical status",
        _set("diagnoses.0.verification_status", "entered-in-error"),
        "diagnoses.0.clinical_status",
        "must be empty",
    ),
    (
        "empty relapse plan",
        _set("relapse_prevention", {}),
        "relapse_prevention.warning_signs",
        "at least one",
    ),
]


class TestValidationNamesTheField:
    @pytest.mark.parametrize(
        ("change", "location", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
    )
    def test_error_location(
        self, change: Callable[[dict[str, Any]], None], location: str, message: str
    ) -> None:
        data = sample()
        data["goals"][0]["id"] = "g1"
        TreatmentPlan.model_validate(data)
        change(data)
        errors = errors_of(data)
        assert location in errors, errors
        assert message in errors[location]

    def test_sample_is_valid(self) -> None:
        TreatmentPlan.model_validate(sample())


class TestCodeListsAgree:
    def test_problem_areas_match_the_project_codes(self) -> None:
        assert get_args(ProblemArea) == PROBLEM_AREAS
        assert tuple(PROBLEM_AREA_DISPLAY) == PROBLEM_AREAS

    def test_phases_match_the_project_codes(self) -> None:
        assert get_args(PhaseCode) == PHASES
        assert tuple(PHASE_DISPLAY) == PHASES

    def test_techniques_have_displays(self) -> None:
        assert get_args(Technique) == tuple(TECHNIQUE_DISPLAY)
