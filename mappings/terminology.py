"""IPT terminology: CodeSystem definitions (read from YAML) and their FHIR CodeSystem and ValueSet.

A code system definition is either a project code system, published as a `CodeSystem` with an all-codes
`ValueSet` at `{IPT_BASE}/ValueSet/<id>`, or an external answer list (LOINC), which is only used to build
answer options and is never published by this service.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast

from mappings.codes import (
    CODE_SYSTEM_BASE,
    CONTENT_PUBLISHER,
    DESIGNATION_SYNONYM,
    SNOMED,
    VALUE_SET_BASE,
)

PropertyType = Literal["code", "Coding", "string", "integer", "boolean"]
PropertyValue = str | int | bool

_PROPERTY_TYPES: frozenset[str] = frozenset({"code", "Coding", "string", "integer", "boolean"})


@dataclass(frozen=True, slots=True)
class Coding:
    system: str
    code: str
    display: str

    def to_fhir(self) -> dict[str, Any]:
        return {"system": self.system, "code": self.code, "display": self.display}


@dataclass(frozen=True, slots=True)
class PropertyDef:
    """A concept property; `value_system` names the code system (by id or URL) of `Coding` values."""

    code: str
    type: PropertyType
    description: str
    value_system: str | None = None


@dataclass(frozen=True, slots=True)
class Concept:
    code: str
    display: str
    definition: str
    designations: tuple[str, ...] = ()
    properties: tuple[tuple[str, tuple[PropertyValue, ...]], ...] = ()

    def property_values(self, code: str) -> tuple[PropertyValue, ...]:
        for name, values in self.properties:
            if name == code:
                return values
        return ()


@dataclass(frozen=True, slots=True)
class CodeSystemDef:
    id: str
    version: str
    name: str
    title: str
    description: str
    url: str
    concepts: tuple[Concept, ...]
    properties: tuple[PropertyDef, ...] = ()
    purpose: str | None = None
    external: bool = False
    value_set_url: str | None = None

    def concept(self, code: str) -> Concept:
        for concept in self.concepts:
            if concept.code == code:
                return concept
        raise ValueError(f"code system {self.id} has no code {code!r}")

    def coding(self, code: str) -> Coding:
        return Coding(self.url, code, self.concept(code).display)

    def codes(self) -> tuple[str, ...]:
        return tuple(concept.code for concept in self.concepts)


class Terminology:
    """Every code system the content may draw codes from, by id."""

    def __init__(self, code_systems: Iterable[CodeSystemDef]) -> None:
        self._by_id: dict[str, CodeSystemDef] = {}
        for code_system in code_systems:
            if code_system.id in self._by_id:
                raise ValueError(f"code system {code_system.id} is defined twice")
            self._by_id[code_system.id] = code_system

    def __getitem__(self, code_system_id: str) -> CodeSystemDef:
        try:
            return self._by_id[code_system_id]
        except KeyError:
            raise ValueError(f"unknown code system {code_system_id!r}") from None

    def __iter__(self) -> Iterator[CodeSystemDef]:
        return iter(self._by_id.values())

    def published(self) -> list[CodeSystemDef]:
        return [cs for cs in self._by_id.values() if not cs.external]

    def coding(self, code_system_id: str, code: str) -> Coding:
        return self[code_system_id].coding(code)


def parse_code_system(data: Mapping[str, Any]) -> CodeSystemDef:
    """Build a code system definition from its YAML mapping."""
    cs_id = _text(data, "id")
    properties = tuple(_parse_property(cs_id, p) for p in data.get("properties", ()))
    known = {p.code: p for p in properties}
    concepts = tuple(_parse_concept(cs_id, c, known) for c in data.get("concepts", ()))
    codes = [c.code for c in concepts]
    duplicates = sorted({c for c in codes if codes.count(c) > 1})
    if duplicates:
        raise ValueError(f"code system {cs_id}: duplicate codes {duplicates}")
    external = bool(data.get("external", False))
    url = _text(data, "url") if external else f"{CODE_SYSTEM_BASE}/{cs_id}"
    value_set = data.get("value_set") if external else f"{VALUE_SET_BASE}/{cs_id}"
    return CodeSystemDef(
        id=cs_id,
        version=_text(data, "version"),
        name=_text(data, "name"),
        title=_text(data, "title"),
        description=" ".join(_text(data, "description").split()),
        url=url,
        concepts=concepts,
        properties=properties,
        purpose=_optional_text(data, "purpose"),
        external=external,
        value_set_url=str(value_set) if value_set else None,
    )


def _parse_property(cs_id: str, data: Mapping[str, Any]) -> PropertyDef:
    prop_type = _text(data, "type")
    if prop_type not in _PROPERTY_TYPES:
        raise ValueError(f"code system {cs_id}: property type {prop_type!r} is not supported")
    return PropertyDef(
        code=_text(data, "code"),
        type=cast(PropertyType, prop_type),
        description=_text(data, "description"),
        value_system=_optional_text(data, "system"),
    )


def _parse_concept(cs_id: str, data: Mapping[str, Any], known: Mapping[str, PropertyDef]) -> Concept:
    code = _text(data, "code")
    properties: list[tuple[str, tuple[PropertyValue, ...]]] = []
    for name, raw in (data.get("properties") or {}).items():
        if name not in known:
            raise ValueError(f"code system {cs_id}, code {code}: undeclared property {name!r}")
        values = tuple(raw) if isinstance(raw, list) else (raw,)
        properties.append((str(name), tuple(_property_value(known[name], v) for v in values)))
    return Concept(
        code=code,
        display=_text(data, "display"),
        definition=" ".join(_text(data, "definition").split()),
        designations=tuple(str(d) for d in data.get("designations", ())),
        properties=tuple(properties),
    )


def _property_value(prop: PropertyDef, value: Any) -> PropertyValue:
    expected: type = {"integer": int, "boolean": bool}.get(prop.type, str)
    # bool is an int subclass: an integer property must not accept `true`.
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        raise ValueError(f"property {prop.code} expects {prop.type}, got {value!r}")
    return cast(PropertyValue, value)


def to_code_system(code_system: CodeSystemDef, terminology: Terminology) -> dict[str, Any]:
    """The FHIR `CodeSystem` of a project code system (content complete, case-sensitive)."""
    if code_system.external:
        raise ValueError(f"{code_system.id} is external and is not published here")
    resource: dict[str, Any] = {
        "resourceType": "CodeSystem",
        "id": code_system.id,
        "url": code_system.url,
        "version": code_system.version,
        "name": code_system.name,
        "title": code_system.title,
        "status": "active",
        "experimental": False,
        "publisher": CONTENT_PUBLISHER,
        "description": code_system.description,
    }
    if code_system.purpose:
        resource["purpose"] = code_system.purpose
    resource |= {
        "caseSensitive": True,
        "valueSet": code_system.value_set_url,
        "content": "complete",
        "count": len(code_system.concepts),
    }
    if code_system.properties:
        resource["property"] = [_property_def_to_fhir(p, terminology) for p in code_system.properties]
    resource["concept"] = [_concept_to_fhir(c, code_system, terminology) for c in code_system.concepts]
    return resource


def to_value_set(code_system: CodeSystemDef) -> dict[str, Any]:
    """The all-codes `ValueSet` of a project code system; it follows the code system's version."""
    return {
        "resourceType": "ValueSet",
        "id": code_system.id,
        "url": code_system.value_set_url,
        "version": code_system.version,
        "name": code_system.name,
        "title": code_system.title,
        "status": "active",
        "experimental": False,
        "publisher": CONTENT_PUBLISHER,
        "description": f"Every code of the code system {code_system.title}.",
        "immutable": False,
        "compose": {"include": [{"system": code_system.url}]},
    }


def _property_def_to_fhir(prop: PropertyDef, terminology: Terminology) -> dict[str, Any]:
    resource: dict[str, Any] = {"code": prop.code}
    if prop.value_system and not prop.value_system.startswith("http"):
        resource["uri"] = terminology[prop.value_system].url
    elif prop.value_system:
        resource["uri"] = prop.value_system
    resource |= {"description": prop.description, "type": prop.type}
    return resource


def _concept_to_fhir(concept: Concept, owner: CodeSystemDef, terminology: Terminology) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "code": concept.code,
        "display": concept.display,
        "definition": concept.definition,
    }
    if concept.designations:
        resource["designation"] = [
            {
                "language": "en",
                "use": {"system": SNOMED, "code": DESIGNATION_SYNONYM, "display": "Synonym"},
                "value": value,
            }
            for value in concept.designations
        ]
    properties: list[dict[str, Any]] = []
    for prop in owner.properties:
        for value in concept.property_values(prop.code):
            properties.append({"code": prop.code, **_property_value_to_fhir(prop, value, terminology)})
    if properties:
        resource["property"] = properties
    return resource


def _property_value_to_fhir(
    prop: PropertyDef, value: PropertyValue, terminology: Terminology
) -> dict[str, Any]:
    if prop.type == "Coding":
        if prop.value_system is None:
            raise ValueError(f"property {prop.code} has Coding values but names no system")
        if prop.value_system.startswith("http"):
            code, _, display = str(value).partition(" ")
            return {"valueCoding": {"system": prop.value_system, "code": code, "display": display}}
        return {"valueCoding": terminology.coding(prop.value_system, str(value)).to_fhir()}
    key = {"code": "valueCode", "string": "valueString", "integer": "valueInteger", "boolean": "valueBoolean"}
    return {key[prop.type]: value}


def _text(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{key!r} must be a non-empty string, got {value!r}")
    return value


def _optional_text(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    return " ".join(_text(data, key).split())
