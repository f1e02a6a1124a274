"""What a QuestionnaireResponse must satisfy before it is stored, and what its completion writes.

- The `questionnaire` canonical (`url` or `url|version`, https://hl7.org/fhir/R4/references.html#canonical)
  resolves to a Questionnaire on this server, and the response follows it
  (https://hl7.org/fhir/R4/questionnaireresponse.html#link, checked by `service.fhir.validation`).
  A response without `questionnaire` (R4 allows it, 0..1) is checked against no form; everything below
  still applies.
- `subject` is a Patient on this server (required when a form is cited: every worksheet is about a
  patient), `basedOn` a CarePlan of that same patient, `author` a Patient, Practitioner, PractitionerRole or
  RelatedPerson on this server (https://hl7.org/fhir/R4/questionnaireresponse-definitions.html).
- The status lifecycle of https://hl7.org/fhir/R4/codesystem-questionnaire-answers-status.html: a completed
  response changes only by becoming `amended` (or `entered-in-error`); once finished, its form and patient
  stay fixed. Every version stays in history (the repository appends, never overwrites).
- Every problem is one issue naming its node; the write is refused (422) when any is an error. Warnings (an
  `in-progress` response that is not yet complete) never refuse a write.

Observation-based extraction (http://hl7.org/fhir/uv/sdc/extraction.html#observation-based-extraction) runs
after a response is completed or amended, in the same transaction: the items a form marks with
`sdc-questionnaire-observationExtract`, and the PHQ-9 total score (LOINC 44261-6) whether marked or not.
Each Observation's id is derived from the response id and its code, so an amendment updates the same
Observation (status `amended`) and withdrawing the response marks its Observations `entered-in-error`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson

from mappings.references import parse_reference, reference_of
from service.errors import Issue, Unprocessable
from service.fhir.sdc import EXT_OBSERVATION_EXTRACT, extract_observations, extracts_observations
from service.fhir.validation import JSON, Codes, check_status_transition, validate_response
from service.interactions.writes import Write
from service.storage.repository import ResourceRepository, StoredVersion

__all__ = [
    "AUTHOR_TYPES",
    "check_questionnaire_response",
    "extract_on_completion",
    "is_error",
    "keyed_observations",
    "observation_id",
    "questionnaire_response_issues",
    "resolve_questionnaire",
    "resolve_reference",
    "response_observations",
    "response_write_issues",
    "value_set_codes",
]

ROOT: Final = "QuestionnaireResponse"
AUTHOR_TYPES: Final = ("Patient", "Practitioner", "PractitionerRole", "RelatedPerson")
_FINISHED: Final = frozenset({"completed", "amended"})
_SERVER_META: Final = ("versionId", "lastUpdated")
# Extracted Observations get name-based UUIDs under this namespace (an arbitrary constant of the service).
_OBSERVATION_NAMESPACE: Final = uuid.UUID("5b0f3c4e-6a57-4a8e-9d8e-1f2d6e9b7a10")
_EXTRACT_FLAG: Final = {"url": EXT_OBSERVATION_EXTRACT, "valueBoolean": True}
_LOINC: Final = "http://loinc.org"
_PHQ9_TOTAL: Final = "44261-6"


def is_error(issue: Issue) -> bool:
    return issue.severity in ("error", "fatal")


@dataclass(frozen=True, slots=True)
class Resolved:
    """A reference that named a resource on this server."""

    resource_type: str
    id: str
    content: JSON


async def resolve_questionnaire(repository: ResourceRepository, canonical: str) -> JSON | None:
    """The Questionnaire a canonical names: `url`, `url|version`, or a relative `Questionnaire/<id>`."""
    if "\x00" in canonical:
        # PostgreSQL text cannot hold NUL, so no stored canonical can match; asking would be a server error.
        return None
    literal = parse_reference(canonical).target
    if literal is not None and literal[0] == "Questionnaire":
        stored = await repository.read("Questionnaire", literal[1])
    else:
        stored = await repository.find_by_canonical("Questionnaire", canonical)
    if stored is None or stored.deleted or stored.content is None:
        return None
    return repository.parsed(stored)


async def resolve_reference(
    repository: ResourceRepository,
    reference: Any,
    *,
    allowed: tuple[str, ...],
    expression: str,
    what: str,
    issues: list[Issue],
) -> Resolved | None:
    """Resolve a Reference to a live resource of an `allowed` type, or add the issue saying why not."""
    text = reference.get("reference") if isinstance(reference, dict) else None
    kinds = " or ".join(allowed)
    if not isinstance(text, str):
        issues.append(
            Issue(
                f"The {what} must be a reference to a {kinds} on this server, such as '{allowed[0]}/123'",
                expression,
                code="required",
            )
        )
        return None
    literal = parse_reference(text).target
    if literal is None:
        issues.append(
            Issue(
                f"The {what} '{text}' is not a reference this server can follow; "
                f"use the form '{allowed[0]}/<id>'",
                expression,
                code="invalid",
            )
        )
        return None
    resource_type, resource_id = literal
    if resource_type not in allowed:
        issues.append(
            Issue(
                f"The {what} must be a {kinds}, not a {resource_type}",
                expression,
                code="invalid",
            )
        )
        return None
    stored = await repository.read_referenced(resource_type, resource_id)
    if stored is None or stored.deleted or stored.content is None:
        state = "was deleted" if stored is not None else "is not on this server"
        issues.append(
            Issue(
                f"The {what} {resource_type}/{resource_id} {state}",
                expression,
                code="not-found",
            )
        )
        return None
    return Resolved(resource_type, resource_id, repository.parsed(stored))


async def value_set_codes(repository: ResourceRepository, questionnaire: JSON) -> dict[str, Codes]:
    """The codes of every `answerValueSet` the form names, looked up before the (synchronous) validator runs.

    A ValueSet that is missing, or defined by filters this server does not evaluate, is left out; the
    validator then warns instead of refusing answers to it.
    """
    canonicals = {
        canonical
        for item in _walk(questionnaire.get("item") or [])
        if isinstance(canonical := item.get("answerValueSet"), str) and not canonical.startswith("#")
    }
    found: dict[str, Codes] = {}
    for canonical in sorted(canonicals):
        codes = await _expand(repository, canonical)
        if codes is not None:
            found[canonical] = codes
    return found


async def _expand(repository: ResourceRepository, canonical: str) -> Codes | None:
    stored = await repository.find_by_canonical("ValueSet", canonical)
    if stored is None or stored.content is None:
        return None
    value_set = repository.parsed(stored)
    expansion = value_set.get("expansion")
    if isinstance(expansion, dict):
        return frozenset(_contains(expansion.get("contains") or []))
    compose = value_set.get("compose") or {}
    codes: set[tuple[str | None, str]] = set()
    for include in compose.get("include") or []:
        part = await _include(repository, include)
        if part is None:
            return None
        codes |= part
    for exclude in compose.get("exclude") or []:
        part = await _include(repository, exclude)
        if part is None:
            return None
        codes -= part
    return frozenset(codes)


async def _include(repository: ResourceRepository, include: JSON) -> set[tuple[str | None, str]] | None:
    system = include.get("system")
    if include.get("filter") or include.get("valueSet") or not isinstance(system, str):
        return None
    if include.get("concept"):
        return {(system, concept["code"]) for concept in include["concept"] if concept.get("code")}
    version = include.get("version")
    stored = await repository.find_by_canonical("CodeSystem", f"{system}|{version}" if version else system)
    if stored is None or stored.content is None:
        return None
    code_system = repository.parsed(stored)
    if code_system.get("content") != "complete":
        return None
    return {(system, code) for code in _concepts(code_system.get("concept") or [])}


def _concepts(concepts: list[JSON]) -> list[str]:
    found: list[str] = []
    for concept in concepts:
        if concept.get("code"):
            found.append(concept["code"])
        found.extend(_concepts(concept.get("concept") or []))
    return found


def _contains(entries: list[JSON]) -> list[tuple[str | None, str]]:
    found: list[tuple[str | None, str]] = []
    for entry in entries:
        if entry.get("code"):
            found.append((entry.get("system"), entry["code"]))
        found.extend(_contains(entry.get("contains") or []))
    return found


def _walk(items: list[JSON]) -> list[JSON]:
    found: list[JSON] = []
    for item in items:
        found.append(item)
        found.extend(_walk(item.get("item") or []))
    return found


async def questionnaire_response_issues(
    repository: ResourceRepository,
    content: JSON,
    *,
    previous: JSON | None,
    check_lifecycle: bool = True,
) -> list[Issue]:
    """Every problem of a QuestionnaireResponse about to be written, errors and warnings, in document order.

    **Parameters:**

    * **content** - the response as it would be stored.
    * **previous** - the current stored version (`None` for a create, or when the resource was deleted).
    * **check_lifecycle** - whether to judge the status change (off for content that is not being written,
      such as the input of `$extract`).
    """
    issues: list[Issue] = []
    status = content.get("status")
    if check_lifecycle and isinstance(status, str):
        issues.extend(check_status_transition(previous.get("status") if previous else None, status))
        if previous is not None and previous.get("status") in _FINISHED:
            issues.extend(_fixed_after_completion(previous, content))

    form: JSON | None = None
    canonical = content.get("questionnaire")
    if isinstance(canonical, str):
        form = await resolve_questionnaire(repository, canonical)
        if form is None:
            issues.append(
                Issue(
                    f"The worksheet '{canonical}' is not on this server, so the answers cannot be checked; "
                    "cite a Questionnaire by its url and version (url|version)",
                    f"{ROOT}.questionnaire",
                    code="not-found",
                )
            )

    patient = await _check_subject(repository, content, required=form is not None, issues=issues)
    await _check_based_on(repository, content, patient, issues)
    if "author" in content:
        await resolve_reference(
            repository,
            content["author"],
            allowed=AUTHOR_TYPES,
            expression=f"{ROOT}.author",
            what="author",
            issues=issues,
        )

    if form is not None:
        codes = await value_set_codes(repository, form)
        issues.extend(validate_response(content, form, value_sets=codes.get))
    return issues


def _fixed_after_completion(previous: JSON, content: JSON) -> list[Issue]:
    issues = []
    for element, what in (("questionnaire", "worksheet"), ("subject", "patient")):
        if previous.get(element) != content.get(element):
            issues.append(
                Issue(
                    f"A {previous.get('status')} response cannot move to another {what}; "
                    f"mark it entered-in-error and submit a new response instead",
                    f"{ROOT}.{element}",
                    code="business-rule",
                )
            )
    return issues


async def _check_subject(
    repository: ResourceRepository, content: JSON, *, required: bool, issues: list[Issue]
) -> str | None:
    if "subject" not in content:
        if required:
            issues.append(
                Issue(
                    "The response must name the patient who filled in the worksheet (subject), "
                    "for example {'reference': 'Patient/123'}",
                    f"{ROOT}.subject",
                    code="required",
                )
            )
        return None
    found = await resolve_reference(
        repository,
        content["subject"],
        allowed=("Patient",),
        expression=f"{ROOT}.subject",
        what="subject",
        issues=issues,
    )
    return found.id if found is not None else None


async def _check_based_on(
    repository: ResourceRepository, content: JSON, patient: str | None, issues: list[Issue]
) -> None:
    based_on = content.get("basedOn") or []
    for index, reference in enumerate(based_on):
        expression = f"{ROOT}.basedOn[{index}]"
        plan = await resolve_reference(
            repository,
            reference,
            allowed=("CarePlan",),
            expression=expression,
            what="treatment plan (basedOn)",
            issues=issues,
        )
        if plan is None:
            continue
        subject = reference_of(plan.content.get("subject"))
        plan_subject = None if subject is None else subject.text
        if patient is None and "subject" not in content:
            issues.append(
                Issue(
                    f"CarePlan/{plan.id} is a patient's plan, so the response must name that patient "
                    "(subject)",
                    f"{ROOT}.subject",
                    code="required",
                )
            )
        elif patient is not None and (subject is None or subject.target != ("Patient", patient)):
            issues.append(
                Issue(
                    f"CarePlan/{plan.id} is the plan of {plan_subject or 'no patient'}, "
                    f"not of Patient/{patient} who answered this worksheet",
                    expression,
                    code="business-rule",
                )
            )


def _comparable(content: JSON) -> JSON:
    result = {k: v for k, v in content.items() if k not in ("id", "meta")}
    meta = {k: v for k, v in (content.get("meta") or {}).items() if k not in _SERVER_META}
    if meta:
        result["meta"] = meta
    return result


def _live_content(version: StoredVersion | None) -> JSON | None:
    if version is None or version.deleted or version.content is None:
        return None
    found: JSON = orjson.loads(version.content)
    return found


async def response_write_issues(
    repository: ResourceRepository, content: JSON, current: StoredVersion | None
) -> list[Issue]:
    """The issues of writing `content` over `current` (`None`: a create); none when nothing changes."""
    previous = _live_content(current)
    if previous is not None and _comparable(previous) == _comparable(content):
        # Unchanged content writes no version (https://hl7.org/fhir/R4/http.html#update); judging it would
        # refuse the completed -> completed "change" that is no change at all.
        return []
    return await questionnaire_response_issues(repository, content, previous=previous)


async def check_questionnaire_response(
    repository: ResourceRepository, resource_type: str, content: JSON, current: StoredVersion | None
) -> None:
    """The write rule: refuse (422, every issue) a response with any error."""
    issues = await response_write_issues(repository, content, current)
    if any(is_error(issue) for issue in issues):
        raise Unprocessable(*issues)


def observation_id(response_id: str, link_id: str, answer_index: int) -> str:
    """The id of the Observation extracted from one answer of one item of a response."""
    return str(uuid.uuid5(_OBSERVATION_NAMESPACE, f"{response_id}|{link_id}|{answer_index}"))


def response_observations(response: JSON, form: JSON) -> list[JSON]:
    """The Observations a finished response yields: the items its form marks for extraction, and always the
    PHQ-9 total score (LOINC 44261-6), which mood tracking over the course of treatment depends on."""
    return extract_observations(response, _total_marked(form))


def _total_marked(form: JSON) -> JSON:
    def mark(items: list[JSON]) -> list[JSON]:
        marked = []
        for item in items:
            copy = {**item}
            if "item" in item:
                copy["item"] = mark(item["item"])
            is_total = any(
                c.get("system") == _LOINC and c.get("code") == _PHQ9_TOTAL for c in item.get("code") or []
            )
            flagged = any(e.get("url") == EXT_OBSERVATION_EXTRACT for e in item.get("extension") or [])
            if is_total and not flagged:
                copy["extension"] = [*(item.get("extension") or []), _EXTRACT_FLAG]
            marked.append(copy)
        return marked

    return {**form, "item": mark(form.get("item") or [])}


def keyed_observations(response: JSON, form: JSON) -> dict[str, JSON]:
    """The Observations a response yields (SDC observation-based extraction), under their derived ids."""
    return _keyed(response, _total_marked(form))


def _keyed(response: JSON, marked_form: JSON) -> dict[str, JSON]:
    keyed: dict[str, JSON] = {}
    counts: dict[str, int] = {}
    for observation in extract_observations(response, marked_form):
        codes = observation.get("code", {}).get("coding") or [{}]
        key = f"{codes[0].get('system')}|{codes[0].get('code')}"
        index = counts.get(key, 0)
        counts[key] = index + 1
        keyed[observation_id(str(response.get("id")), key, index)] = observation
    return keyed


async def extract_on_completion(repository: ResourceRepository, writes: Sequence[Write]) -> None:
    """Write (or correct, or withdraw) the Observations of responses in the transaction that changed them.

    Observations no earlier write left behind (those of new responses) are created together, in one
    `create_many`; one that exists, or existed, is corrected or withdrawn by itself.
    """
    forms = _Forms(repository)
    wanted: dict[str, JSON] = {}
    withdrawn: set[str] = set()
    for written, previous in writes:
        response = _live_content(written)
        if response is None:
            continue
        before = _live_content(previous)
        now: dict[str, JSON] = {}
        if response.get("status") in _FINISHED:
            now = await forms.observations(response)
        earlier: dict[str, JSON] = {}
        if before is not None and before.get("status") in _FINISHED:
            earlier = await forms.observations({**before, "id": written.id})
        wanted.update(now)
        withdrawn |= earlier.keys() - now.keys()
    if not wanted and not withdrawn:
        return
    taken = await repository.stored_ids("Observation", wanted.keys() | withdrawn)
    await repository.create_many(
        [("Observation", key, observation) for key, observation in wanted.items() if key not in taken]
    )
    for key, observation in wanted.items():
        if key in taken:
            await _write_observation(repository, key, observation)
    for key in withdrawn:
        await _withdraw_observation(repository, key)


class _Forms:
    """The forms a batch of responses answers, each resolved and prepared for extraction once: a
    transaction of a hundred responses to one form would otherwise copy it a hundred times."""

    def __init__(self, repository: ResourceRepository) -> None:
        self.repository = repository
        # By canonical: the form marked for extraction, or None when it yields no Observation.
        self._marked: dict[str, JSON | None] = {}

    async def observations(self, response: JSON) -> dict[str, JSON]:
        canonical = response.get("questionnaire")
        if not isinstance(canonical, str):
            return {}
        if canonical not in self._marked:
            form = await resolve_questionnaire(self.repository, canonical)
            marked = _total_marked(form) if form is not None else None
            self._marked[canonical] = marked if marked is not None and extracts_observations(marked) else None
        marked_form = self._marked[canonical]
        return _keyed(response, marked_form) if marked_form is not None else {}


async def _write_observation(repository: ResourceRepository, key: str, observation: JSON) -> None:
    existing = _live_content(await repository.read("Observation", key))
    if existing is None:
        await repository.update("Observation", key, {**observation, "id": key})
        return
    if existing.get("status") in ("final", "amended") and _comparable(
        {**existing, "status": "final"}
    ) == _comparable({**observation, "id": key}):
        # The amendment did not change this result: it keeps its version and status.
        return
    await repository.update("Observation", key, {**observation, "id": key, "status": "amended"})


async def _withdraw_observation(repository: ResourceRepository, key: str) -> None:
    existing = _live_content(await repository.read("Observation", key))
    if existing is not None and existing.get("status") != "entered-in-error":
        await repository.update("Observation", key, {**existing, "status": "entered-in-error"})
