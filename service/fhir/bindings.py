"""Required code bindings, which `fhir.resources` leaves unchecked.

The R4B models record the allowed codes of every element bound to a required ValueSet as `enum_values`
in the field's JSON-schema extras; this module walks a validated model and checks each such value.
https://hl7.org/fhir/R4/terminologies.html#required
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from pydantic import BaseModel

from service.errors import Issue


@dataclass(frozen=True, slots=True)
class _Field:
    attribute: str
    wire_name: str
    allowed: frozenset[str] | None


_OBSERVATION_STATUS = frozenset(
    {"registered", "preliminary", "final", "amended", "corrected", "cancelled", "entered-in-error", "unknown"}
)

# Codes whose required ValueSet the models do not carry, or carry cut short (ending in "+" or "etc."): the
# complete R4 lists. A cut-short list with no entry here is not checked rather than checked wrongly.
_EXTRA_BINDINGS: dict[tuple[str, str], frozenset[str]] = {
    ("QuestionnaireItem", "type"): frozenset(
        {
            "group",
            "display",
            "boolean",
            "decimal",
            "integer",
            "date",
            "dateTime",
            "time",
            "string",
            "text",
            "url",
            "choice",
            "open-choice",
            "attachment",
            "reference",
            "quantity",
        }
    ),
    ("Observation", "status"): _OBSERVATION_STATUS,
    ("RiskAssessment", "status"): _OBSERVATION_STATUS,
    ("DetectedIssue", "status"): _OBSERVATION_STATUS,
    ("DiagnosticReport", "status"): _OBSERVATION_STATUS | {"partial", "appended"},
    ("Task", "status"): frozenset(
        {
            "draft",
            "requested",
            "received",
            "accepted",
            "rejected",
            "ready",
            "cancelled",
            "in-progress",
            "on-hold",
            "failed",
            "completed",
            "entered-in-error",
        }
    ),
    ("Encounter", "status"): frozenset(
        {
            "planned",
            "arrived",
            "triaged",
            "in-progress",
            "onleave",
            "finished",
            "cancelled",
            "entered-in-error",
            "unknown",
        }
    ),
    ("Quantity", "comparator"): frozenset({"<", "<=", ">=", ">"}),
    ("Age", "comparator"): frozenset({"<", "<=", ">=", ">"}),
    ("Duration", "comparator"): frozenset({"<", "<=", ">=", ">"}),
    ("Count", "comparator"): frozenset({"<", "<=", ">=", ">"}),
    ("Distance", "comparator"): frozenset({"<", "<=", ">=", ">"}),
}


_TRUNCATION_MARKS = frozenset({"+", "etc.", "etc", "..."})


@cache
def _fields(model: type[BaseModel]) -> tuple[_Field, ...]:
    fields = []
    for attribute, info in model.model_fields.items():
        if attribute.endswith("__ext") or attribute == "fhir_comments":
            continue
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        enum_values = extra.get("enum_values")
        allowed = frozenset(str(v) for v in enum_values) if isinstance(enum_values, list) else None
        wire_name = info.alias or attribute
        if allowed is not None and allowed & _TRUNCATION_MARKS:
            allowed = None
        allowed = _EXTRA_BINDINGS.get((model.__name__, wire_name), allowed)
        fields.append(_Field(attribute, wire_name, allowed))
    return tuple(fields)


def check_required_bindings(model: BaseModel, path: str) -> list[Issue]:
    """Return one issue for every code outside its required ValueSet, with the element's location."""
    issues: list[Issue] = []
    _walk(model, path, issues)
    return issues


def _walk(model: BaseModel, path: str, issues: list[Issue]) -> None:
    for field in _fields(type(model)):
        value = getattr(model, field.attribute, None)
        if value is None:
            continue
        if isinstance(value, list):
            for index, item in enumerate(value):
                _check(item, f"{path}.{field.wire_name}[{index}]", field, issues)
        else:
            _check(value, f"{path}.{field.wire_name}", field, issues)


def _check(value: Any, path: str, field: _Field, issues: list[Issue]) -> None:
    if isinstance(value, BaseModel):
        _walk(value, path, issues)
    elif field.allowed is not None and isinstance(value, str) and value not in field.allowed:
        allowed = ", ".join(sorted(field.allowed))
        issues.append(
            Issue(
                f"'{value}' is not a valid code for {path}; expected one of: {allowed}",
                expression=path,
                code="code-invalid",
            )
        )
