"""The IPT content as FHIR: worksheets, terminology and protocol, built from the YAML in `mappings/content/`.

The YAML is the reviewable source (a clinician can read it); this module only reads it through
`importlib.resources`, so it works from an installed wheel, and turns it into JSON-ready resources:

    content.yaml            the manifest: which files make up the content, worksheets in reading order
    terminology.yaml        project code systems (problem areas, phases, techniques, roles, answer lists)
    worksheets/<id>.yaml    one worksheet each -> Questionnaire `{IPT_BASE}/Questionnaire/<id>`
    protocol.yaml           the weekly session, technique versions, and the plan "IPT for depression"

Usage:

    from mappings.content import load_content
    for resource in load_content():  # CodeSystem, ValueSet, Questionnaire, ActivityDefinition, PlanDefinition
        ...
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

import yaml

from mappings.codes import LOINC
from mappings.protocol import (
    Protocol,
    parse_protocol,
    to_plan_definition,
    to_session_activity,
    to_technique_activity,
)
from mappings.questionnaire import Worksheet, parse_worksheet, to_questionnaire
from mappings.terminology import (
    CodeSystemDef,
    Concept,
    PropertyValue,
    Terminology,
    parse_code_system,
    to_code_system,
    to_value_set,
)

__all__ = ["RESOURCE_ORDER", "load_content", "render_worksheets_markdown", "worksheet_ids"]

# Dependency order: a resource only refers to resources of its own type or of a type listed before it.
RESOURCE_ORDER: tuple[str, ...] = (
    "CodeSystem",
    "ValueSet",
    "Questionnaire",
    "ActivityDefinition",
    "PlanDefinition",
)

_WORKSHEET_CODE_SYSTEM = "ipt-worksheet"


@dataclass(frozen=True, slots=True)
class _Content:
    terminology: Terminology
    worksheets: tuple[Worksheet, ...]
    protocol: Protocol
    resources: tuple[dict[str, Any], ...]


def load_content() -> list[dict[str, Any]]:
    """Every content resource as a JSON-ready dict, in dependency order (see `RESOURCE_ORDER`).

    Each dict has `resourceType`, `id`, `url` and `version`. The caller owns the returned dicts.
    """
    return copy.deepcopy(list(_content().resources))


def worksheet_ids() -> list[str]:
    """The ids of every worksheet Questionnaire, in reading order."""
    return [w.id for w in _content().worksheets]


def render_worksheets_markdown() -> str:
    """The text of `docs/worksheets.md`: every worksheet with its canonical, purpose, areas and phases."""
    content = _content()
    areas = content.terminology["ipt-problem-area"]
    phases = content.terminology["ipt-phase"]
    techniques = content.terminology["ipt-technique"]
    lines = [
        "# IPT worksheets",
        "",
        "Every worksheet of the IPT content is a FHIR Questionnaire. This page is generated from",
        "`mappings/content/` by `mappings.content.render_worksheets_markdown()`; do not edit it by hand, run",
        "`python -m tests.mappings.regenerate_golden` after changing the content.",
        "",
        "A response or a treatment plan cites a worksheet by its version-specific canonical `url|version`.",
        "The base `http://example.org/fhir/ipt` is a placeholder that a deployment replaces.",
        "",
        "| # | Worksheet | id | Version | Problem areas | Phases |",
        "|---|---|---|---|---|---|",
    ]
    for number, worksheet in enumerate(content.worksheets, start=1):
        lines.append(
            f"| {number} | {worksheet.title} | `{worksheet.id}` | {worksheet.version} "
            f"| {_labels(worksheet.problem_areas, areas)} | {_labels(worksheet.phases, phases)} |"
        )
    for worksheet in content.worksheets:
        items = worksheet.all_items()
        questions = sum(1 for i in items if i.type not in ("group", "display"))
        lines += [
            "",
            f"## {worksheet.title}",
            "",
            f"- url: `{worksheet.url}`",
            f"- version: {worksheet.version} (cite as `{worksheet.canonical}`)",
            f"- problem areas: {_labels(worksheet.problem_areas, areas)}",
            f"- phases: {_labels(worksheet.phases, phases)}",
        ]
        if worksheet.techniques:
            lines.append(f"- techniques: {_labels(worksheet.techniques, techniques)}")
        lines += [
            f"- questions: {questions}",
            "",
            f"Purpose: {worksheet.purpose}",
            "",
            worksheet.description,
        ]
    return "\n".join(lines) + "\n"


def _labels(codes: Sequence[str], code_system: CodeSystemDef) -> str:
    if len(codes) == len(code_system.concepts) and len(codes) > 1:
        return "all"
    return ", ".join(code_system.concept(c).display for c in codes)


@cache
def _content() -> _Content:
    manifest = _read_yaml("content.yaml")
    base = [parse_code_system(d) for d in _read_yaml(manifest["terminology"])["code_systems"]]
    base_terminology = Terminology(base)
    worksheets = tuple(
        parse_worksheet(_read_yaml("worksheets", f"{ws_id}.yaml"), base_terminology)
        for ws_id in manifest["worksheets"]
    )
    for expected, worksheet in zip(manifest["worksheets"], worksheets, strict=True):
        if worksheet.id != expected:
            raise ValueError(f"worksheets/{expected}.yaml declares id {worksheet.id!r}")
    code_systems = [
        _with_worksheet_concepts(cs, worksheets) if cs.id == _WORKSHEET_CODE_SYSTEM else cs for cs in base
    ]
    terminology = Terminology(code_systems)
    protocol = parse_protocol(_read_yaml(manifest["protocol"]))
    published = terminology.published()
    resources: list[dict[str, Any]] = [to_code_system(cs, terminology) for cs in published]
    resources += [to_value_set(cs) for cs in published]
    resources += [to_questionnaire(w, terminology) for w in worksheets]
    resources.append(to_session_activity(protocol))
    resources += [
        to_technique_activity(protocol, t, terminology) for t in terminology["ipt-technique"].concepts
    ]
    resources.append(to_plan_definition(protocol, terminology, worksheets))
    return _Content(terminology, worksheets, protocol, tuple(resources))


def _with_worksheet_concepts(code_system: CodeSystemDef, worksheets: Sequence[Worksheet]) -> CodeSystemDef:
    """The worksheet code system gets one concept per worksheet, so the two can never drift apart."""
    concepts = []
    for worksheet in worksheets:
        properties: list[tuple[str, tuple[PropertyValue, ...]]] = [
            ("problem-area", worksheet.problem_areas),
            ("phase", worksheet.phases),
        ]
        if worksheet.techniques:
            properties.append(("technique", worksheet.techniques))
        loinc = tuple(f"{c.code} {c.display}" for c in worksheet.codes if c.system == LOINC)
        if loinc:
            properties.append(("loinc", loinc))
        concepts.append(Concept(worksheet.id, worksheet.title, worksheet.description, (), tuple(properties)))
    return dataclasses.replace(code_system, concepts=tuple(concepts))


def _read_yaml(*parts: str) -> Any:
    return yaml.safe_load(files("mappings").joinpath("content", *parts).read_text(encoding="utf-8"))
