"""Structured Data Capture helpers: pre-fill a response, score it, and extract Observations from it.

Implements the pure parts of SDC (http://hl7.org/fhir/uv/sdc/ , R4-based):

* `populate_response` - the result of `Questionnaire/$populate`
  (http://hl7.org/fhir/uv/sdc/populate.html): an `in-progress` QuestionnaireResponse whose items mirror the
  Questionnaire, pre-filled from an earlier response and from `initial` / `answerOption.initialSelected`.
* `extract_observations` - observation-based `$extract`
  (http://hl7.org/fhir/uv/sdc/extraction.html#observation-based-extraction), driven by the
  `sdc-questionnaire-observationExtract` extension.
* `compute_ordinal_total` - a total score from the `ordinalValue` extension of the chosen options
  (http://hl7.org/fhir/R4/extension-ordinalvalue.html), computed here instead of trusting a submitted value.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Final

from mappings.codes import LOINC, LOINC_PHQ9_TOTAL
from mappings.references import reference_of
from service.fhir.validation import JSON, check_answer

__all__ = [
    "EXT_OBSERVATION_EXTRACT",
    "EXT_ORDINAL_VALUE",
    "compute_ordinal_total",
    "extract_observations",
    "populate_response",
]

EXT_OBSERVATION_EXTRACT: Final = (
    "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-observationExtract"
)
EXT_ORDINAL_VALUE: Final = "http://hl7.org/fhir/StructureDefinition/ordinalValue"
# The successor of ordinalValue in the newer extensions pack; read both so either kind of form scores.
EXT_ITEM_WEIGHT: Final = "http://hl7.org/fhir/StructureDefinition/itemWeight"
_WEIGHT_URLS: Final = (EXT_ORDINAL_VALUE, EXT_ITEM_WEIGHT)

OBSERVATION_CATEGORY: Final = "http://terminology.hl7.org/CodeSystem/observation-category"
_SURVEY: Final = {"coding": [{"system": OBSERVATION_CATEGORY, "code": "survey", "display": "Survey"}]}

_PERFORMER_TYPES: Final = frozenset(
    {"Practitioner", "PractitionerRole", "Organization", "CareTeam", "Patient", "RelatedPerson"}
)
_BASED_ON_TYPES: Final = frozenset(
    {
        "CarePlan",
        "DeviceRequest",
        "ImmunizationRecommendation",
        "MedicationRequest",
        "NutritionOrder",
        "ServiceRequest",
    }
)


def populate_response(
    questionnaire: JSON, *, subject: str, author: str | None, previous: JSON | None, authored: str
) -> JSON:
    """Build an `in-progress` QuestionnaireResponse ready to be filled in.

    **Parameters:**

    * **questionnaire** - the form; the response cites it as `url|version`.
    * **subject** / **author** - references such as `Patient/123`.
    * **previous** - an earlier response whose answers are carried over where the item still exists at the
      same place and the answer is still acceptable for it (type, options, bounds).
    * **authored** - the FHIR dateTime to stamp.
    """
    url = questionnaire.get("url", "")
    version = questionnaire.get("version")
    response: JSON = {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": f"{url}|{version}" if version else url,
        "status": "in-progress",
        "subject": {"reference": subject},
        "authored": authored,
    }
    if author:
        response["author"] = {"reference": author}
    items = _populate(questionnaire.get("item") or [], (previous or {}).get("item") or [])
    if items:
        response["item"] = items
    return response


def _populate(definitions: list[JSON], previous: list[JSON]) -> list[JSON]:
    items: list[JSON] = []
    for definition in definitions:
        link_id = definition.get("linkId")
        earlier = [p for p in previous if p.get("linkId") == link_id]
        kind = definition.get("type")
        if kind == "group":
            sources = earlier if definition.get("repeats") else earlier[:1]
            for source in sources or [{}]:
                group = _shell(definition)
                children = _populate(definition.get("item") or [], source.get("item") or [])
                if children:
                    group["item"] = children
                items.append(group)
            continue
        question = _shell(definition)
        if kind != "display":
            answers = _carried_answers(definition, earlier) or _initial_answers(definition)
            if answers:
                question["answer"] = answers
        items.append(question)
    return items


def _shell(definition: JSON) -> JSON:
    item: JSON = {"linkId": definition["linkId"]}
    for key in ("definition", "text"):
        if key in definition:
            item[key] = definition[key]
    return item


def _carried_answers(definition: JSON, earlier: list[JSON]) -> list[JSON]:
    answers: list[JSON] = []
    for occurrence in earlier:
        for answer in occurrence.get("answer") or []:
            if any(issue.severity == "error" for issue in check_answer(definition, answer)):
                continue
            value = {k: v for k, v in answer.items() if k.startswith("value")}
            answers.append(_with_children(definition, value, answer.get("item") or []))
    return answers if definition.get("repeats") else answers[:1]


def _initial_answers(definition: JSON) -> list[JSON]:
    values = [
        {k: v for k, v in entry.items() if k.startswith("value")}
        for entry in (definition.get("initial") or [])
        + [o for o in definition.get("answerOption") or [] if o.get("initialSelected") is True]
    ]
    answers = [_with_children(definition, value, []) for value in values if value]
    return answers if definition.get("repeats") else answers[:1]


def _with_children(definition: JSON, answer: JSON, earlier_children: list[JSON]) -> JSON:
    children = _populate(definition.get("item") or [], earlier_children)
    if children:
        answer["item"] = children
    return answer


def compute_ordinal_total(response: JSON, questionnaire: JSON) -> int | None:
    """Sum the `ordinalValue` of the options chosen in a response (the PHQ-9 total, for example).

    Only items whose options carry ordinal values count. Returns `None` when the form has no such item,
    when none of them is answered, when a required one is unanswered, or when an answer is not one of the
    options, because a partial or unverifiable total would misstate the score. A fractional sum is rounded
    half up.
    """
    scored = {
        definition["linkId"]: (definition, weights)
        for definition, _ in _definitions(questionnaire.get("item") or [], False)
        if (weights := _option_weights(definition, questionnaire))
    }
    if not scored:
        return None
    chosen: dict[str, list[JSON]] = {}
    for item, definition, _ in _matched(response.get("item") or [], questionnaire.get("item") or [], False):
        if definition["linkId"] in scored:
            chosen.setdefault(definition["linkId"], []).extend(item.get("answer") or [])
    if not any(chosen.values()):
        return None
    total = Decimal(0)
    for link_id, (definition, weights) in scored.items():
        answers = chosen.get(link_id, [])
        if not answers and definition.get("required"):
            return None
        for answer in answers:
            weight = weights.get(_answer_key(answer))
            if weight is None:
                return None
            total += weight
    return int(total.to_integral_value(rounding=ROUND_HALF_UP))


def extract_observations(response: JSON, questionnaire: JSON) -> list[JSON]:
    """Observations for the LOINC-coded items marked for extraction (SDC `observationExtract`).

    One Observation per answer of each such item, in document order; the PHQ-9 total (LOINC 44261-6) is
    computed by `compute_ordinal_total` instead of copied from the submitted answer. Only a `completed` or
    `amended` response yields Observations: an unfinished form has no final results.
    """
    if response.get("status") not in ("completed", "amended"):
        return []
    root_flag = _extract_flag(questionnaire, False)
    observations: list[JSON] = []
    for item, definition, flag in _matched(
        response.get("item") or [], questionnaire.get("item") or [], root_flag
    ):
        if not flag or not _loinc_codes(definition) or _is_total(definition):
            continue
        for answer in item.get("answer") or []:
            value = _observation_value(answer)
            if value is not None:
                observations.append(_observation(response, definition, value))
    for definition, flag in _definitions(questionnaire.get("item") or [], root_flag):
        if flag and _is_total(definition):
            total = compute_ordinal_total(response, questionnaire)
            if total is not None:
                observations.append(_observation(response, definition, {"valueInteger": total}))
    return observations


def extracts_observations(questionnaire: JSON) -> bool:
    """Whether any item of the form is marked for extraction and LOINC-coded: if none is, no response to it
    yields an Observation (`extract_observations` returns nothing for any)."""
    root_flag = _extract_flag(questionnaire, False)
    return any(
        flag and _loinc_codes(d) for d, flag in _definitions(questionnaire.get("item") or [], root_flag)
    )


def _observation(response: JSON, definition: JSON, value: JSON) -> JSON:
    code: JSON = {"coding": [dict(c) for c in definition.get("code") or []]}
    if definition.get("text"):
        code["text"] = definition["text"]
    observation: JSON = {
        "resourceType": "Observation",
        "status": "final",
        "category": [_SURVEY],
        "code": code,
    }
    based_on = [r for r in response.get("basedOn") or [] if _reference_type(r) in _BASED_ON_TYPES]
    if based_on:
        observation["basedOn"] = based_on
    for key in ("subject", "encounter"):
        if key in response:
            observation[key] = response[key]
    if "authored" in response:
        observation["effectiveDateTime"] = response["authored"]
    author = response.get("author")
    if isinstance(author, dict) and _reference_type(author) in _PERFORMER_TYPES:
        observation["performer"] = [author]
    observation.update(value)
    if response.get("id"):
        observation["derivedFrom"] = [{"reference": f"QuestionnaireResponse/{response['id']}"}]
    return observation


def _observation_value(answer: JSON) -> JSON | None:
    """Map an answer value[x] to the Observation value[x] of the same meaning (Observation has no Coding)."""
    for key, value in answer.items():
        if key in (
            "valueInteger",
            "valueBoolean",
            "valueString",
            "valueQuantity",
            "valueTime",
            "valueDateTime",
        ):
            return {key: value}
        if key == "valueDecimal":
            return {"valueQuantity": {"value": value}}
        if key == "valueCoding":
            return {"valueCodeableConcept": {"coding": [value]}}
        if key == "valueDate":
            return {"valueDateTime": value}
    return None


def _reference_type(reference: Any) -> str | None:
    parsed = reference_of(reference)
    return None if parsed is None else parsed.resource_type


def _loinc_codes(definition: JSON) -> list[JSON]:
    return [c for c in definition.get("code") or [] if c.get("system") == LOINC]


def _is_total(definition: JSON) -> bool:
    return any(c.get("code") == LOINC_PHQ9_TOTAL for c in _loinc_codes(definition))


def _extract_flag(element: JSON, inherited: bool) -> bool:
    for extension in element.get("extension") or []:
        if extension.get("url") == EXT_OBSERVATION_EXTRACT and isinstance(
            extension.get("valueBoolean"), bool
        ):
            flag: bool = extension["valueBoolean"]
            return flag
    return inherited


def _definitions(definitions: list[JSON], inherited: bool) -> Iterator[tuple[JSON, bool]]:
    for definition in definitions:
        flag = _extract_flag(definition, inherited)
        yield definition, flag
        yield from _definitions(definition.get("item") or [], flag)


def _matched(
    items: list[JSON], definitions: list[JSON], inherited: bool
) -> Iterator[tuple[JSON, JSON, bool]]:
    """Response items paired with their Questionnaire items, level by level; unknown linkIds are skipped."""
    by_link = {d.get("linkId"): d for d in definitions}
    for item in items:
        definition = by_link.get(item.get("linkId"))
        if definition is None:
            continue
        flag = _extract_flag(definition, inherited)
        yield item, definition, flag
        children = definition.get("item") or []
        yield from _matched(item.get("item") or [], children, flag)
        for answer in item.get("answer") or []:
            yield from _matched(answer.get("item") or [], children, flag)


def _answer_key(answer: JSON) -> tuple[str, Any] | None:
    for key, value in answer.items():
        if key == "valueCoding" and isinstance(value, dict):
            return key, (value.get("system"), value.get("code"))
        if key in ("valueInteger", "valueString", "valueDate", "valueTime"):
            return key, value
    return None


def _option_weights(definition: JSON, questionnaire: JSON) -> dict[tuple[str, Any] | None, Decimal]:
    weights: dict[tuple[str, Any] | None, Decimal] = {}
    for option in definition.get("answerOption") or []:
        coding = option.get("valueCoding")
        weight = _weight(option) if _weight(option) is not None else _weight(coding or {})
        if weight is not None:
            weights[_answer_key(option)] = weight
    value_set = definition.get("answerValueSet")
    if isinstance(value_set, str) and value_set.startswith("#"):
        for resource in questionnaire.get("contained") or []:
            if resource.get("resourceType") == "ValueSet" and resource.get("id") == value_set[1:]:
                for include in (resource.get("compose") or {}).get("include") or []:
                    for concept in include.get("concept") or []:
                        weight = _weight(concept)
                        if weight is not None:
                            weights[("valueCoding", (include.get("system"), concept.get("code")))] = weight
    return weights


def _weight(element: JSON) -> Decimal | None:
    for extension in element.get("extension") or []:
        if extension.get("url") in _WEIGHT_URLS:
            value = extension.get("valueDecimal", extension.get("valueInteger"))
            if isinstance(value, int | float) and not isinstance(value, bool):
                return Decimal(str(value))
    return None
