"""The search parameters the service supports, from the official FHIR R4 (4.0.1) definitions.

The definitions live in `service/fhir/data/search_parameters.json`, generated once from the R4 package by
`scripts/extract_search_parameters.py` (see its docstring for provenance), and in
`sdc_search_parameters.json`, from the Structured Data Capture guide (`questionnaire-code`: R4's `code` on a
Questionnaire searches its items' codes, not the form's own). They are loaded once, on first use.

Parameter definitions: https://hl7.org/fhir/R4/searchparameter-registry.html
Search framework: https://hl7.org/fhir/R4/search.html

Usage:

    >>> parameters_for("CarePlan")["subject"].targets
    ('Group', 'Patient')
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import Literal, cast, get_args

ParameterType = Literal["token", "string", "reference", "date", "uri", "number", "quantity"]

COMMON_BASE = "Resource"
"""The base of the parameters every type has: `_id`, `_lastUpdated`, `_tag`, `_profile`, `_security`."""


@dataclass(frozen=True, slots=True)
class SearchParameter:
    """One FHIR SearchParameter definition, reduced to what search needs.

    `expression` is the FHIRPath of the specification, unchanged; for a definition shared by several types
    it holds the parts of every type (`CarePlan.subject.where(resolve() is Patient) | Condition...`).
    `bases` are the served types the parameter applies to (`("Resource",)` for the common ones).
    `targets` are the resource types a reference parameter may point to (empty for other types).
    """

    code: str
    type: ParameterType
    expression: str
    url: str
    # repr=False: QuestionnaireResponse.subject alone lists 145 target types.
    targets: tuple[str, ...] = field(default=(), repr=False)
    bases: tuple[str, ...] = ()


# The R4 definitions, then those of implementation guides the service follows (SDC), each file as published.
_DEFINITION_FILES = ("search_parameters.json", "sdc_search_parameters.json")


@cache
def _load() -> tuple[SearchParameter, ...]:
    items = []
    for name in _DEFINITION_FILES:
        text = resources.files("service.fhir.data").joinpath(name).read_text(encoding="utf-8")
        items.extend(json.loads(text)["parameters"])
    known_types = set(get_args(ParameterType))
    parameters = []
    for item in items:
        if item["type"] not in known_types:
            raise ValueError(f"search parameter {item['url']} has unsupported type {item['type']!r}")
        parameters.append(
            SearchParameter(
                code=item["code"],
                type=cast(ParameterType, item["type"]),
                expression=item["expression"],
                url=item["url"],
                targets=tuple(item["target"]),
                bases=tuple(item["base"]),
            )
        )
    return tuple(parameters)


def all_parameters() -> tuple[SearchParameter, ...]:
    """Every supported definition, common ones included, each once."""
    return _load()


@cache
def served_types() -> frozenset[str]:
    """The resource types that have search parameters (every served type)."""
    return frozenset(base for parameter in _load() for base in parameter.bases if base != COMMON_BASE)


@cache
def _by_type() -> Mapping[str, Mapping[str, SearchParameter]]:
    common = {p.code: p for p in _load() if COMMON_BASE in p.bases}
    table: dict[str, Mapping[str, SearchParameter]] = {}
    for resource_type in sorted(served_types()):
        own = {p.code: p for p in _load() if resource_type in p.bases}
        table[resource_type] = MappingProxyType({**common, **dict(sorted(own.items()))})
    return MappingProxyType(table)


def parameters_for(resource_type: str) -> Mapping[str, SearchParameter]:
    """The parameters of a served type by code, the common `_id`, `_lastUpdated` ... included.

    Raises `KeyError` for a type that is not served.
    """
    return _by_type()[resource_type]
