"""Worksheet definitions (reviewable YAML) and the FHIR `Questionnaire` each one becomes.

A worksheet definition is read once into typed, immutable values (`Worksheet`, `Item`); every reference it
makes is resolved while it is read: answer options come from a code system of the content's
`Terminology`, and an `enable_when` condition may only name an item that comes earlier in the form, so a
renderer that fills the form top-down always knows whether an item is enabled.

Inside a group a child's `linkId` is `<group linkId>.<child id>`, which keeps ids unique in the form and
readable in a QuestionnaireResponse.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast, get_args

from mappings.codes import (
    CONTENT_PUBLISHER,
    EXT_CALCULATED_EXPRESSION,
    EXT_ENTRY_FORMAT,
    EXT_ITEM_CONTROL,
    EXT_MAX_OCCURS,
    EXT_MAX_VALUE,
    EXT_MIN_OCCURS,
    EXT_MIN_VALUE,
    EXT_ORDINAL_VALUE,
    ITEM_CONTROL_SYSTEM,
    LOINC,
    PHASE_SYSTEM,
    PHASES,
    PROBLEM_AREA_SYSTEM,
    PROBLEM_AREAS,
    QUESTIONNAIRE_BASE,
    SNOMED,
    USAGE_CONTEXT_TYPE,
    WORKSHEET_SYSTEM,
)
from mappings.terminology import Coding, Terminology

ItemType = Literal[
    "group", "display", "boolean", "decimal", "integer", "date", "dateTime", "string", "text", "choice",
    "open-choice",
]  # fmt: skip
Operator = Literal["exists", "=", "!=", ">", "<", ">=", "<="]
EnableBehavior = Literal["all", "any"]
AnswerValue = bool | int | float | str | Coding

_ITEM_TYPES: frozenset[str] = frozenset(get_args(ItemType))
_OPERATORS: frozenset[str] = frozenset(get_args(Operator))
_QUESTION_TYPES_WITH_OPTIONS: frozenset[str] = frozenset({"choice", "open-choice"})
_ITEM_CONTROLS: frozenset[str] = frozenset(
    {
        "list", "table", "htable", "gtable", "atable", "header", "footer", "inline", "prompt", "unit",
        "lower", "upper", "flyover", "help", "autocomplete", "drop-down", "check-box", "lookup",
        "radio-button", "slider", "spinner", "text-box",
    }
)  # fmt: skip
_SYSTEM_ALIASES: Mapping[str, str] = {"loinc": LOINC, "snomed": SNOMED}
_ITEM_KEYS: frozenset[str] = frozenset(
    {
        "id", "text", "type", "required", "repeats", "read_only", "max_length", "options", "answer_value_set",
        "enable_when", "enable_behavior", "control", "entry_format", "min_value", "max_value", "min_occurs",
        "max_occurs", "calculated", "codes", "prefix", "items",
    }
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class AnswerOption:
    coding: Coding
    score: int | None = None


@dataclass(frozen=True, slots=True)
class EnableWhen:
    question: str
    operator: Operator
    answer: AnswerValue


@dataclass(frozen=True, slots=True)
class Item:
    link_id: str
    text: str
    type: ItemType
    required: bool = False
    repeats: bool = False
    read_only: bool = False
    max_length: int | None = None
    options: tuple[AnswerOption, ...] = ()
    answer_value_set: str | None = None
    enable_when: tuple[EnableWhen, ...] = ()
    enable_behavior: EnableBehavior | None = None
    control: str | None = None
    entry_format: str | None = None
    min_value: int | None = None
    max_value: int | None = None
    min_occurs: int | None = None
    max_occurs: int | None = None
    calculated: str | None = None
    codes: tuple[Coding, ...] = ()
    prefix: str | None = None
    items: tuple[Item, ...] = ()

    def walk(self) -> list[Item]:
        """This item and all its descendants, in form order."""
        found = [self]
        for child in self.items:
            found.extend(child.walk())
        return found


@dataclass(frozen=True, slots=True)
class Worksheet:
    id: str
    version: str
    name: str
    title: str
    description: str
    purpose: str
    problem_areas: tuple[str, ...]
    phases: tuple[str, ...]
    techniques: tuple[str, ...]
    items: tuple[Item, ...]
    codes: tuple[Coding, ...] = ()
    copyright: str | None = None

    @property
    def url(self) -> str:
        return f"{QUESTIONNAIRE_BASE}/{self.id}"

    @property
    def canonical(self) -> str:
        """The version-specific canonical (`url|version`) that plans and responses cite."""
        return f"{self.url}|{self.version}"

    def all_items(self) -> list[Item]:
        found: list[Item] = []
        for item in self.items:
            found.extend(item.walk())
        return found


def parse_worksheet(data: Mapping[str, Any], terminology: Terminology) -> Worksheet:
    """Read one worksheet definition, resolving its codes and conditions; `ValueError` if it is wrong."""
    ws_id = _text(data, "id")
    try:
        problem_areas = _codes_or_all(data.get("problem_areas"), PROBLEM_AREAS, "problem_areas")
        phases = _codes_or_all(data.get("phases"), PHASES, "phases")
        techniques = tuple(str(t) for t in data.get("techniques", ()))
        for technique in techniques:
            terminology.coding("ipt-technique", technique)
        seen: dict[str, Item] = {}
        items = tuple(_parse_item(raw, None, terminology, seen) for raw in _list(data, "items"))
        return Worksheet(
            id=ws_id,
            version=_semver(_text(data, "version")),
            name=_text(data, "name"),
            title=_text(data, "title"),
            description=_prose(_text(data, "description")),
            purpose=_prose(_text(data, "purpose")),
            problem_areas=problem_areas,
            phases=phases,
            techniques=techniques,
            items=items,
            codes=tuple(_coding(c) for c in data.get("codes", ())),
            copyright=_prose(data["copyright"]) if data.get("copyright") else None,
        )
    except ValueError as exc:
        raise ValueError(f"worksheet {ws_id}: {exc}") from exc


def _parse_item(
    data: Mapping[str, Any], parent: str | None, terminology: Terminology, seen: dict[str, Item]
) -> Item:
    local_id = _text(data, "id")
    link_id = f"{parent}.{local_id}" if parent else local_id
    unknown = sorted(set(data) - _ITEM_KEYS)
    if unknown:
        raise ValueError(f"item {link_id}: unknown keys {unknown}")
    if link_id in seen:
        raise ValueError(f"item {link_id}: linkId is not unique")
    item_type = _text(data, "type")
    if item_type not in _ITEM_TYPES:
        raise ValueError(f"item {link_id}: type {item_type!r} is not supported")
    conditions = tuple(_parse_enable_when(link_id, c, seen) for c in data.get("enable_when", ()))
    behavior = data.get("enable_behavior")
    if len(conditions) > 1 and behavior not in ("all", "any"):
        raise ValueError(f"item {link_id}: enable_behavior (all/any) is required with several conditions")
    options: tuple[AnswerOption, ...] = ()
    value_set: str | None = None
    if "options" in data:
        code_system = terminology[_text(data, "options")]
        options = tuple(
            AnswerOption(code_system.coding(c.code), _score(c.property_values("score")))
            for c in code_system.concepts
        )
    if "answer_value_set" in data:
        value_set = terminology[_text(data, "answer_value_set")].value_set_url
    if (options or value_set) and item_type not in _QUESTION_TYPES_WITH_OPTIONS:
        raise ValueError(f"item {link_id}: only choice items take answer options")
    if item_type == "choice" and not (options or value_set):
        raise ValueError(f"item {link_id}: a choice item needs options or answer_value_set")
    control = data.get("control")
    if control is not None and control not in _ITEM_CONTROLS:
        raise ValueError(f"item {link_id}: unknown item control {control!r}")
    children = tuple(_parse_item(raw, link_id, terminology, seen) for raw in data.get("items", ()))
    if (item_type == "group") != bool(children):
        raise ValueError(f"item {link_id}: a group needs child items and only a group may have them")
    item = Item(
        link_id=link_id,
        text=_prose(_text(data, "text")),
        type=cast(ItemType, item_type),
        required=bool(data.get("required", False)),
        repeats=bool(data.get("repeats", False)),
        read_only=bool(data.get("read_only", False)),
        max_length=_optional_int(data, "max_length"),
        options=options,
        answer_value_set=value_set,
        enable_when=conditions,
        enable_behavior=cast(EnableBehavior, behavior) if len(conditions) > 1 else None,
        control=str(control) if control else None,
        entry_format=data.get("entry_format"),
        min_value=_optional_int(data, "min_value"),
        max_value=_optional_int(data, "max_value"),
        min_occurs=_optional_int(data, "min_occurs"),
        max_occurs=_optional_int(data, "max_occurs"),
        calculated=_prose(data["calculated"]) if data.get("calculated") else None,
        codes=tuple(_coding(c) for c in data.get("codes", ())),
        prefix=data.get("prefix"),
        items=children,
    )
    if item.type == "display" and (item.required or item.repeats or item.read_only):
        raise ValueError(f"item {link_id}: a display item is never required, repeating or read-only")
    if (item.min_occurs is not None or item.max_occurs is not None) and not item.repeats:
        raise ValueError(f"item {link_id}: minOccurs/maxOccurs need repeats")
    seen[link_id] = item
    return item


def _parse_enable_when(link_id: str, data: Mapping[str, Any], seen: Mapping[str, Item]) -> EnableWhen:
    question = _text(data, "question")
    target = seen.get(question)
    if target is None:
        raise ValueError(f"item {link_id}: enable_when names {question!r}, which is not an earlier item")
    operator = str(data.get("operator", "="))
    if operator not in _OPERATORS:
        raise ValueError(f"item {link_id}: unknown operator {operator!r}")
    raw = data.get("answer")
    answer: AnswerValue
    if operator == "exists" or target.type == "boolean":
        if not isinstance(raw, bool):
            raise ValueError(f"item {link_id}: enable_when on {question} needs a true/false answer")
        answer = raw
    elif target.options:
        matches = [o.coding for o in target.options if o.coding.code == raw]
        if not matches:
            raise ValueError(f"item {link_id}: {raw!r} is not an answer option of {question}")
        answer = matches[0]
    elif _comparable(target.type, raw):
        answer = cast(AnswerValue, raw)
    else:
        raise ValueError(f"item {link_id}: cannot compare {question} ({target.type}) with {raw!r}")
    return EnableWhen(question, cast(Operator, operator), answer)


def _comparable(item_type: str, raw: Any) -> bool:
    if item_type in ("integer", "decimal"):
        return isinstance(raw, int | float) and not isinstance(raw, bool)
    return item_type in ("string", "text", "date") and isinstance(raw, str)


def to_questionnaire(worksheet: Worksheet, terminology: Terminology) -> dict[str, Any]:
    """The FHIR `Questionnaire` of a worksheet, as a JSON-ready dict."""
    resource: dict[str, Any] = {
        "resourceType": "Questionnaire",
        "id": worksheet.id,
        "url": worksheet.url,
        "version": worksheet.version,
        "name": worksheet.name,
        "title": worksheet.title,
        "status": "active",
        "experimental": False,
        "subjectType": ["Patient"],
        "publisher": CONTENT_PUBLISHER,
        "description": worksheet.description,
        "useContext": use_context(worksheet.problem_areas, worksheet.phases, terminology),
        "purpose": worksheet.purpose,
    }
    if worksheet.copyright:
        resource["copyright"] = worksheet.copyright
    codes = [Coding(WORKSHEET_SYSTEM, worksheet.id, worksheet.title), *worksheet.codes]
    codes += [terminology.coding("ipt-technique", t) for t in worksheet.techniques]
    resource["code"] = [c.to_fhir() for c in codes]
    resource["item"] = [_item_to_fhir(item) for item in worksheet.items]
    return resource


def use_context(
    problem_areas: Sequence[str], phases: Sequence[str], terminology: Terminology
) -> list[dict[str, Any]]:
    """`useContext` entries: `focus` for each problem area, `workflow` for each phase."""
    contexts = [("focus", PROBLEM_AREA_SYSTEM, "ipt-problem-area", c) for c in problem_areas]
    contexts += [("workflow", PHASE_SYSTEM, "ipt-phase", c) for c in phases]
    return [
        {
            "code": {"system": USAGE_CONTEXT_TYPE, "code": kind},
            "valueCodeableConcept": {"coding": [terminology.coding(cs_id, code).to_fhir()]},
        }
        for kind, _system, cs_id, code in contexts
    ]


def _item_to_fhir(item: Item) -> dict[str, Any]:
    resource: dict[str, Any] = {}
    extensions = _item_extensions(item)
    if extensions:
        resource["extension"] = extensions
    resource["linkId"] = item.link_id
    if item.codes:
        resource["code"] = [c.to_fhir() for c in item.codes]
    if item.prefix:
        resource["prefix"] = item.prefix
    resource["text"] = item.text
    resource["type"] = item.type
    if item.enable_when:
        resource["enableWhen"] = [_enable_when_to_fhir(c) for c in item.enable_when]
    if item.enable_behavior:
        resource["enableBehavior"] = item.enable_behavior
    if item.type != "display":
        resource["required"] = item.required
        resource["repeats"] = item.repeats
    if item.read_only:
        resource["readOnly"] = True
    if item.max_length is not None:
        resource["maxLength"] = item.max_length
    if item.answer_value_set:
        resource["answerValueSet"] = item.answer_value_set
    if item.options:
        resource["answerOption"] = [_option_to_fhir(o) for o in item.options]
    if item.items:
        resource["item"] = [_item_to_fhir(child) for child in item.items]
    return resource


def _item_extensions(item: Item) -> list[dict[str, Any]]:
    extensions: list[dict[str, Any]] = []
    if item.control:
        coding = {"system": ITEM_CONTROL_SYSTEM, "code": item.control}
        extensions.append({"url": EXT_ITEM_CONTROL, "valueCodeableConcept": {"coding": [coding]}})
    if item.entry_format:
        extensions.append({"url": EXT_ENTRY_FORMAT, "valueString": item.entry_format})
    if item.min_value is not None:
        extensions.append({"url": EXT_MIN_VALUE, "valueInteger": item.min_value})
    if item.max_value is not None:
        extensions.append({"url": EXT_MAX_VALUE, "valueInteger": item.max_value})
    if item.min_occurs is not None:
        extensions.append({"url": EXT_MIN_OCCURS, "valueInteger": item.min_occurs})
    if item.max_occurs is not None:
        extensions.append({"url": EXT_MAX_OCCURS, "valueInteger": item.max_occurs})
    if item.calculated:
        expression = {"language": "text/fhirpath", "expression": item.calculated}
        extensions.append({"url": EXT_CALCULATED_EXPRESSION, "valueExpression": expression})
    return extensions


def _enable_when_to_fhir(condition: EnableWhen) -> dict[str, Any]:
    resource: dict[str, Any] = {"question": condition.question, "operator": condition.operator}
    answer = condition.answer
    if isinstance(answer, Coding):
        resource["answerCoding"] = answer.to_fhir()
    elif isinstance(answer, bool):
        resource["answerBoolean"] = answer
    elif isinstance(answer, int):
        resource["answerInteger"] = answer
    elif isinstance(answer, float):
        resource["answerDecimal"] = answer
    else:
        resource["answerString"] = answer
    return resource


def _option_to_fhir(option: AnswerOption) -> dict[str, Any]:
    resource: dict[str, Any] = {}
    if option.score is not None:
        resource["extension"] = [{"url": EXT_ORDINAL_VALUE, "valueDecimal": option.score}]
    resource["valueCoding"] = option.coding.to_fhir()
    return resource


def _coding(data: Mapping[str, Any]) -> Coding:
    system = _text(data, "system")
    return Coding(_SYSTEM_ALIASES.get(system, system), _text(data, "code"), _text(data, "display"))


def _codes_or_all(raw: Any, allowed: tuple[str, ...], key: str) -> tuple[str, ...]:
    if raw == "all":
        return allowed
    if not isinstance(raw, list) or not raw:
        raise ValueError(f"{key} must be 'all' or a non-empty list")
    unknown = [c for c in raw if c not in allowed]
    if unknown:
        raise ValueError(f"{key}: unknown codes {unknown}")
    return tuple(c for c in allowed if c in raw)


def _score(values: tuple[Any, ...]) -> int | None:
    return int(values[0]) if values else None


def _semver(version: str) -> str:
    parts = version.split(".")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise ValueError(f"version {version!r} is not semver (MAJOR.MINOR.PATCH)")
    return version


def _prose(text: Any) -> str:
    """Fold YAML block text into one line, so line breaks in the source never reach a renderer."""
    return " ".join(str(text).split())


def _list(data: Mapping[str, Any], key: str) -> list[Any]:
    value = data.get(key)
    if not isinstance(value, list) or not value:
        raise ValueError(f"{key!r} must be a non-empty list")
    return value


def _optional_int(data: Mapping[str, Any], key: str) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{key!r} must be an integer, got {value!r}")
    return value


def _text(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{key!r} must be a non-empty string, got {value!r}")
    return value
