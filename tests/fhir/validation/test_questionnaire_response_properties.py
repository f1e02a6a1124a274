"""Property tests: generated valid responses pass, and each single mutation is refused at the right place.

Spec clauses under test (https://hl7.org/fhir/R4/questionnaireresponse.html#link): for any Questionnaire, a
response built by the rules (answers of the item's type, options honoured, required items present, disabled
items absent, one answer to a non-repeating item) raises no error; one wrong value type, unknown linkId,
missing required item, answer to a disabled item, second answer to a non-repeating item or code outside the
options is refused with an issue at the exact `expression` of the node that broke the rule.

The generator and its enableWhen oracle below are written independently of the validator, and take any
Questionnaire dict: the rich worksheets of `tests.fhir.builders` and every worksheet of the IPT content.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from mappings.content import load_content
from service.errors import Issue
from service.fhir.validation import validate_response
from tests.fhir.builders import VALUE_SETS, operators_worksheet, people_worksheet, phq9_like

JSON = dict[str, Any]
Codes = frozenset[tuple[str | None, str]]
Lookup = Callable[[str], Codes | None]
Draw = Callable[..., Any]

ROOT = "QuestionnaireResponse"
EXT_MIN_VALUE = "http://hl7.org/fhir/StructureDefinition/minValue"
EXT_MAX_VALUE = "http://hl7.org/fhir/StructureDefinition/maxValue"
EXT_MIN_LENGTH = "http://hl7.org/fhir/StructureDefinition/minLength"
EXT_MIN_OCCURS = "http://hl7.org/fhir/StructureDefinition/questionnaire-minOccurs"
EXT_MAX_OCCURS = "http://hl7.org/fhir/StructureDefinition/questionnaire-maxOccurs"

ANSWER_KEYS = {
    "boolean": {"valueBoolean"},
    "decimal": {"valueDecimal"},
    "integer": {"valueInteger"},
    "date": {"valueDate"},
    "dateTime": {"valueDateTime"},
    "time": {"valueTime"},
    "string": {"valueString"},
    "text": {"valueString"},
    "url": {"valueUri"},
    "choice": {"valueCoding"},
    "open-choice": {"valueCoding", "valueString"},
    "attachment": {"valueAttachment"},
    "reference": {"valueReference"},
    "quantity": {"valueQuantity"},
}


# --- the forms under test ------------------------------------------------------------------------------


def _content_value_sets(resources: list[JSON]) -> dict[str, Codes]:
    concepts: dict[str, set[tuple[str | None, str]]] = {}

    def flatten(system: str, items: list[JSON]) -> Iterator[tuple[str | None, str]]:
        for concept in items:
            yield system, concept["code"]
            yield from flatten(system, concept.get("concept") or [])

    for resource in resources:
        if resource["resourceType"] == "CodeSystem":
            concepts[resource["url"]] = set(flatten(resource["url"], resource.get("concept") or []))
    value_sets: dict[str, Codes] = {}
    for resource in resources:
        if resource["resourceType"] != "ValueSet":
            continue
        codes: set[tuple[str | None, str]] = set()
        for include in (resource.get("compose") or {}).get("include") or []:
            if "concept" in include:
                codes |= {(include.get("system"), c["code"]) for c in include["concept"]}
            elif not include.get("filter"):
                codes |= concepts.get(include.get("system", ""), set())
        frozen = frozenset(codes)
        value_sets[resource["url"]] = frozen
        if resource.get("version"):
            value_sets[f"{resource['url']}|{resource['version']}"] = frozen
    return value_sets


def _forms() -> dict[str, tuple[JSON, Lookup]]:
    forms: dict[str, tuple[JSON, Lookup]] = {
        "people": (people_worksheet(), VALUE_SETS.get),
        "operators": (operators_worksheet(), VALUE_SETS.get),
        "phq9": (phq9_like(), VALUE_SETS.get),
    }
    resources = load_content()
    lookup = _content_value_sets(resources).get
    for resource in resources:
        if resource["resourceType"] == "Questionnaire":
            forms[f"ipt-{resource.get('id') or resource['url'].rsplit('/', 1)[-1]}"] = (resource, lookup)
    return forms


FORMS = _forms()


# --- generating valid responses -------------------------------------------------------------------------


def _ext_value(definition: JSON, url: str) -> Any:
    for extension in definition.get("extension") or []:
        if extension.get("url") == url:
            return next((v for k, v in extension.items() if k.startswith("value")), None)
    return None


def _value(draw: Draw, definition: JSON, value_sets: Lookup) -> JSON:
    kind = definition["type"]
    options = definition.get("answerOption") or []
    if options:
        if kind == "open-choice" and draw(st.booleans()):
            return {"valueString": draw(st.text("abcdefgh ", min_size=1, max_size=12).filter(str.strip))}
        option = draw(st.sampled_from(options))
        key = next(k for k in option if k.startswith("value"))
        return {key: copy.deepcopy(option[key])}
    if kind in ("choice", "open-choice") and isinstance(definition.get("answerValueSet"), str):
        codes = value_sets(definition["answerValueSet"])
        if codes:
            system, code = draw(st.sampled_from(sorted(codes, key=str)))
            coding = {"code": code} if system is None else {"system": system, "code": code}
            return {"valueCoding": coding}
        return (
            {"valueString": "free text"}
            if kind == "open-choice"
            else {"valueCoding": {"system": "urn:x", "code": "a"}}
        )
    low, high = _ext_value(definition, EXT_MIN_VALUE), _ext_value(definition, EXT_MAX_VALUE)
    if kind == "boolean":
        return {"valueBoolean": draw(st.booleans())}
    if kind == "integer":
        return {
            "valueInteger": draw(st.integers(-1000 if low is None else low, 1000 if high is None else high))
        }
    if kind == "decimal":
        number = draw(
            st.decimals(
                Decimal(-1000 if low is None else str(low)),
                Decimal(1000 if high is None else str(high)),
                places=2,
            )
        )
        return {"valueDecimal": float(number)}
    if kind == "date":
        first = date.fromisoformat(low) if isinstance(low, str) and len(low) == 10 else date(1900, 1, 1)
        last = date.fromisoformat(high) if isinstance(high, str) and len(high) == 10 else date(2100, 12, 31)
        return {"valueDate": draw(st.dates(first, last)).isoformat()}
    if kind == "dateTime":
        moment = draw(st.datetimes(datetime(1900, 1, 1), datetime(2100, 1, 1), timezones=st.just(UTC)))
        return {"valueDateTime": moment.replace(microsecond=0).isoformat()}
    if kind == "time":
        return {"valueTime": draw(st.times(time(0, 0), time(23, 59, 59))).replace(microsecond=0).isoformat()}
    if kind in ("string", "text"):
        shortest = max(1, _ext_value(definition, EXT_MIN_LENGTH) or 1)
        longest = max(shortest, min(definition.get("maxLength") or 30, 30))
        alphabet = st.characters(categories=["Lu", "Ll", "Nd"])
        return {"valueString": draw(st.text(alphabet, min_size=shortest, max_size=longest))}
    if kind == "url":
        return {"valueUri": "https://example.org/" + draw(st.text("abcxyz", min_size=1, max_size=10))}
    if kind == "attachment":
        return {"valueAttachment": {"contentType": "text/plain", "data": "aGVsbG8="}}
    if kind == "reference":
        return {"valueReference": {"reference": f"Patient/{draw(st.integers(1, 99))}"}}
    if kind == "quantity":
        return {"valueQuantity": {"value": draw(st.integers(0, 300)), "unit": "kg"}}
    raise AssertionError(f"no generator for item type {kind}")


def _count(draw: Draw, definition: JSON) -> int:
    if not definition.get("repeats"):
        return 1
    low = max(1, _ext_value(definition, EXT_MIN_OCCURS) or 1)
    high = max(low, min(_ext_value(definition, EXT_MAX_OCCURS) or low + 2, low + 2))
    return int(draw(st.integers(low, high)))


def _instance(draw: Draw, definition: JSON, value_sets: Lookup) -> JSON:
    """One occurrence of an item that carries at least one answer."""
    item: JSON = {"linkId": definition["linkId"]}
    if definition["type"] == "group":
        item["item"] = _children(draw, definition["item"], value_sets)
        return item
    answers = []
    for _ in range(_count(draw, definition)):
        answer = _value(draw, definition, value_sets)
        nested = _items(draw, definition.get("item") or [], value_sets)
        if nested:
            answer["item"] = nested
        answers.append(answer)
    item["answer"] = answers
    return item


def _children(draw: Draw, definitions: list[JSON], value_sets: Lookup) -> list[JSON]:
    """The items of a group occurrence, at least one of them answered."""
    items = _items(draw, definitions, value_sets)
    if not any("answer" in i or i.get("item") for i in items):
        answerable = [d for d in definitions if d["type"] != "display"]
        chosen = next((d for d in answerable if not d.get("enableWhen")), answerable[0])
        items.append(_instance(draw, chosen, value_sets))
        items.sort(key=lambda i: [d["linkId"] for d in definitions].index(i["linkId"]))
    return items


def _items(draw: Draw, definitions: list[JSON], value_sets: Lookup) -> list[JSON]:
    items: list[JSON] = []
    for definition in definitions:
        if definition["type"] == "display":
            if draw(st.booleans()):
                items.append({"linkId": definition["linkId"]})
            continue
        if not (definition.get("required") or draw(st.booleans())):
            continue
        occurrences = _count(draw, definition) if definition["type"] == "group" else 1
        items.extend(_instance(draw, definition, value_sets) for _ in range(occurrences))
    return items


@st.composite
def valid_responses(draw: Draw, form: JSON, value_sets: Lookup, statuses: tuple[str, ...]) -> JSON:
    canonical = f"{form['url']}|{form['version']}" if form.get("version") else form["url"]
    response: JSON = {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": canonical,
        "status": draw(st.sampled_from(statuses)),
        "item": _items(draw, form.get("item") or [], value_sets),
    }
    _prune(response, _definitions(form))
    return response


# --- an independent enableWhen oracle --------------------------------------------------------------------


def _definitions(form: JSON) -> dict[str, JSON]:
    found: dict[str, JSON] = {}

    def walk(items: list[JSON]) -> None:
        for item in items:
            found[item["linkId"]] = item
            walk(item.get("item") or [])

    walk(form.get("item") or [])
    return found


@dataclass
class Loc:
    item: JSON
    siblings: list[JSON]
    index: int
    path: str
    container_path: str
    chain: list[JSON]


def _walk(items: list[JSON], base: str, chain: list[JSON]) -> Iterator[Loc]:
    for k, item in enumerate(items):
        path = f"{base}.item[{k}]"
        yield Loc(item, items, k, path, base, chain)
        yield from _walk(item.get("item") or [], path, [*chain, item])
        for j, answer in enumerate(item.get("answer") or []):
            yield from _walk(answer.get("item") or [], f"{path}.answer[{j}]", [*chain, item])


def _descendants(container: JSON) -> Iterator[JSON]:
    for item in container.get("item") or []:
        yield item
        yield from _descendants(item)
    for answer in container.get("answer") or []:
        yield from _descendants(answer)


def _oracle_values(question: str, chain: list[JSON], response: JSON) -> list[tuple[str, Any]]:
    for container in [*reversed(chain), response]:
        found = [i for i in _descendants(container) if i.get("linkId") == question]
        if found:
            return [
                (k, v)
                for i in found
                for a in i.get("answer") or []
                for k, v in a.items()
                if k.startswith("value")
            ]
    return []


def _plain(key: str, value: Any) -> Any:
    if key.endswith("Coding"):
        return (value.get("system"), value.get("code"))
    if key.endswith("Quantity"):
        return float(value["value"])
    if key.endswith(("Integer", "Decimal")):
        return float(value)
    if key.endswith("Reference"):
        return value.get("reference")
    return value


def _holds(condition: JSON, values: list[tuple[str, Any]]) -> bool:
    key, expected = next((k, v) for k, v in condition.items() if k.startswith("answer"))
    operator = condition["operator"]
    if operator == "exists":
        return bool(values) == expected
    target = _plain(key, expected)

    def same(key2: str, value: Any) -> bool:
        plain = _plain(key2, value)
        if key.endswith("Coding") and key2.endswith("Coding") and target[0] is None:
            return bool(plain[1] == target[1])
        return (key2[5:] == key[6:] or {key2[5:], key[6:]} <= {"Integer", "Decimal"}) and plain == target

    if operator == "=":
        return any(same(k, v) for k, v in values)
    if operator == "!=":
        return not any(same(k, v) for k, v in values)
    compare = {
        ">": lambda a, b: a > b,
        "<": lambda a, b: a < b,
        ">=": lambda a, b: a >= b,
        "<=": lambda a, b: a <= b,
    }
    return any(
        compare[operator](_plain(k, v), target) for k, v in values if not k.endswith(("Coding", "Boolean"))
    )


def _oracle_enabled(definition: JSON, chain: list[JSON], response: JSON) -> bool:
    conditions = definition.get("enableWhen") or []
    if not conditions:
        return True
    results = [_holds(c, _oracle_values(c["question"], chain, response)) for c in conditions]
    return any(results) if definition.get("enableBehavior") == "any" else all(results)


def _prune(response: JSON, definitions: dict[str, JSON]) -> None:
    """Drop disabled items one at a time, in document order, until every remaining item is enabled."""
    while True:
        target = next(
            (
                loc
                for loc in _walk(response["item"], ROOT, [])
                if not _oracle_enabled(definitions[loc.item["linkId"]], loc.chain, response)
            ),
            None,
        )
        if target is None:
            break
        del target.siblings[target.index]
    _drop_empty_lists(response)


def _drop_empty_lists(element: JSON) -> None:
    for key in ("item", "answer"):
        if key in element:
            for child in element[key]:
                _drop_empty_lists(child)
            if not element[key]:
                del element[key]


# --- mutations: each returns the (expression, code) it must be refused with, or None -----------------------

Mutation = Callable[[Draw, JSON, JSON, Lookup], "tuple[str, str] | None"]


def _locs(response: JSON) -> list[Loc]:
    return list(_walk(response.get("item") or [], ROOT, []))


def wrong_value_type(draw: Draw, response: JSON, form: JSON, value_sets: Lookup) -> tuple[str, str] | None:
    definitions = _definitions(form)
    answered = [(loc, j) for loc in _locs(response) for j in range(len(loc.item.get("answer") or []))]
    if not answered:
        return None
    loc, j = draw(st.sampled_from(answered))
    kind = definitions[loc.item["linkId"]]["type"]
    old = loc.item["answer"][j]
    wrong: JSON = {"valueString": "yes"} if kind == "boolean" else {"valueBoolean": True}
    if "item" in old:
        wrong["item"] = old["item"]
    loc.item["answer"][j] = wrong
    return f"{loc.path}.answer[{j}]", "value"


def unknown_link_id(draw: Draw, response: JSON, form: JSON, value_sets: Lookup) -> tuple[str, str] | None:
    locs = _locs(response)
    if not locs:
        return None
    loc = draw(st.sampled_from(locs))
    loc.item["linkId"] = "zz-no-such-item"
    return loc.path, "not-found"


def missing_required(draw: Draw, response: JSON, form: JSON, value_sets: Lookup) -> tuple[str, str] | None:
    definitions = _definitions(form)
    required = [loc for loc in _locs(response) if definitions[loc.item["linkId"]].get("required")]
    if not required:
        return None
    loc = draw(st.sampled_from(required))
    loc.siblings[:] = [i for i in loc.siblings if i["linkId"] != loc.item["linkId"]]
    return loc.container_path, "required"


def answer_to_disabled_item(
    draw: Draw, response: JSON, form: JSON, value_sets: Lookup
) -> tuple[str, str] | None:
    definitions = _definitions(form)
    containers: list[tuple[list[JSON], str, list[JSON], list[JSON]]] = [
        (response.setdefault("item", []), ROOT, [], form.get("item") or [])
    ]
    for loc in _locs(response):
        definition = definitions[loc.item["linkId"]]
        children = definition.get("item") or []
        if not children:
            continue
        chain = [*loc.chain, loc.item]
        if definition["type"] == "group":
            containers.append((loc.item.setdefault("item", []), loc.path, chain, children))
        else:
            for j, answer in enumerate(loc.item.get("answer") or []):
                containers.append((answer.setdefault("item", []), f"{loc.path}.answer[{j}]", chain, children))
    candidates = [
        (items, base, chain, children, d)
        for items, base, chain, children in containers
        for d in children
        if d.get("enableWhen")
        and d["type"] != "display"
        and all(i["linkId"] != d["linkId"] for i in items)
        and not _oracle_enabled(d, chain, response)
    ]
    if not candidates:
        _drop_empty_lists(response)
        return None
    items, base, _, children, definition = draw(st.sampled_from(candidates))
    order = [d["linkId"] for d in children]
    position = sum(1 for i in items if order.index(i["linkId"]) < order.index(definition["linkId"]))
    items.insert(position, _instance(draw, definition, value_sets))
    _drop_empty_lists(response)
    return f"{base}.item[{position}]", "business-rule"


def second_answer(draw: Draw, response: JSON, form: JSON, value_sets: Lookup) -> tuple[str, str] | None:
    definitions = _definitions(form)
    single = [
        loc
        for loc in _locs(response)
        if not definitions[loc.item["linkId"]].get("repeats")
        and definitions[loc.item["linkId"]]["type"] != "display"
    ]
    if not single:
        return None
    loc = draw(st.sampled_from(single))
    if definitions[loc.item["linkId"]]["type"] == "group":
        loc.siblings.insert(loc.index + 1, copy.deepcopy(loc.item))
        return f"{loc.container_path}.item[{loc.index + 1}]", "structure"
    loc.item["answer"].append(copy.deepcopy(loc.item["answer"][0]))
    return f"{loc.path}.answer[1]", "structure"


def code_outside_options(
    draw: Draw, response: JSON, form: JSON, value_sets: Lookup
) -> tuple[str, str] | None:
    definitions = _definitions(form)

    def restricted(definition: JSON) -> bool:
        if definition.get("answerOption"):
            return True
        canonical = definition.get("answerValueSet")
        return isinstance(canonical, str) and value_sets(canonical) is not None

    coded = [
        (loc, j)
        for loc in _locs(response)
        if restricted(definitions[loc.item["linkId"]])
        for j, answer in enumerate(loc.item.get("answer") or [])
        if "valueCoding" in answer
    ]
    if not coded:
        return None
    loc, j = draw(st.sampled_from(coded))
    loc.item["answer"][j]["valueCoding"] = {**loc.item["answer"][j]["valueCoding"], "code": "zz-not-a-code"}
    return f"{loc.path}.answer[{j}]", "code-invalid"


MUTATIONS: dict[str, Mutation] = {
    "wrong-value-type": wrong_value_type,
    "unknown-linkId": unknown_link_id,
    "missing-required": missing_required,
    "answer-to-disabled-item": answer_to_disabled_item,
    "second-answer": second_answer,
    "code-outside-options": code_outside_options,
}


def _applicable(form: JSON, mutation: str) -> bool:
    definitions = list(_definitions(form).values())
    if mutation == "wrong-value-type":
        return any(d["type"] not in ("group", "display") for d in definitions)
    if mutation == "second-answer":
        return any(d["type"] != "display" for d in definitions)
    if mutation == "missing-required":
        return any(d.get("required") for d in definitions)
    if mutation == "answer-to-disabled-item":
        return any(d.get("enableWhen") for d in definitions)
    if mutation == "code-outside-options":
        return any(
            d.get("answerValueSet") or any("valueCoding" in o for o in d.get("answerOption") or [])
            for d in definitions
        )
    return True


# --- the properties ------------------------------------------------------------------------------------


def _errors(issues: list[Issue]) -> list[tuple[str | None, str | None]]:
    return [(i.expression, i.code) for i in issues if i.severity == "error"]


PROPERTY_SETTINGS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)


@pytest.mark.parametrize("name", sorted(FORMS))
@PROPERTY_SETTINGS
@given(data=st.data())
def test_a_valid_response_raises_no_error(name: str, data: st.DataObject) -> None:
    form, value_sets = FORMS[name]
    response = data.draw(valid_responses(form, value_sets, ("completed", "amended", "in-progress")))
    assert _errors(validate_response(response, form, value_sets=value_sets)) == []


# A worksheet without, say, an enableWhen has nothing for that mutation to break: only pairs that can
# fail are generated, so a pair that stops applying after a content change vanishes rather than passing.
APPLICABLE_MUTATIONS = [
    (name, mutation)
    for name in sorted(FORMS)
    for mutation in sorted(MUTATIONS)
    if _applicable(FORMS[name][0], mutation)
]


def test_every_mutation_applies_to_some_worksheet() -> None:
    assert {mutation for _, mutation in APPLICABLE_MUTATIONS} == set(MUTATIONS)


@pytest.mark.parametrize(("name", "mutation"), APPLICABLE_MUTATIONS)
@PROPERTY_SETTINGS
@given(data=st.data())
def test_a_single_mutation_is_refused_at_its_node(name: str, mutation: str, data: st.DataObject) -> None:
    form, value_sets = FORMS[name]
    response = data.draw(valid_responses(form, value_sets, ("completed",)))
    expected = MUTATIONS[mutation](data.draw, response, form, value_sets)
    assume(expected is not None)
    issues = validate_response(response, form, value_sets=value_sets)
    assert expected in _errors(issues), [(i.expression, i.code, i.diagnostics) for i in issues]
