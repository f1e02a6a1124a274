"""`PlanDefinition/$apply`: https://hl7.org/fhir/R4/plandefinition-operation-apply.html

Inputs, from a `Parameters` body or the query string (https://hl7.org/fhir/R4/operations.html#request):

- `planDefinition` (type level only, 1..1): canonical `url|version`, or `url` for its highest version;
- `subject` (1..1): `Patient/<id>` of a stored Patient (R4 allows several; a plan is for one client);
- `practitioner` (0..1): `Practitioner/<id>`, the author, performer and therapist of the draft;
- `focus` (0..1): the IPT problem area (`grief`, `role-dispute`, `role-transition`,
  `interpersonal-deficits`) that `%focus` stands for in the actions' applicability conditions, as a code
  or a Coding of the ipt-problem-area CodeSystem;
- `condition` (0..*): `Condition/<id>` of the subject, the diagnoses the plan addresses.

`focus` and `condition` are this server's additions to the R4 operation. The other R4 inputs (`encounter`,
`organization`, `userType`, `userLanguage`, `userTaskContext`, `setting`, `settingContext`) are accepted
and not used. The answer is the draft CarePlan of `service.fhir.apply`, returned and not stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine

from mappings.codes import PROBLEM_AREA_SYSTEM, PROBLEM_AREAS, QUESTIONNAIRE_BASE
from mappings.references import parse_reference, reference_of
from service.errors import BadRequest, Gone, Issue, NotFound, Unprocessable
from service.fhir.apply import apply_plan_definition
from service.fhir.audit import note_read
from service.fhir.parsing import check_resource
from service.storage.repository import ResourceRepository, StoredVersion

_OWN = ("planDefinition", "subject", "practitioner", "focus", "condition")
_IGNORED = (
    "encounter",
    "organization",
    "userType",
    "userLanguage",
    "userTaskContext",
    "setting",
    "settingContext",
)
_SINGLE = ("planDefinition", "subject", "practitioner", "focus")
# Query-string names that are not inputs of the operation but the transport's.
_TRANSPORT = ("_format", "_pretty")


@dataclass(slots=True)
class ApplyInputs:
    """The inputs of one `$apply`, each as text; `expressions` says where each came from."""

    plan_definition: str | None = None
    subject: str | None = None
    practitioner: str | None = None
    focus: str | None = None
    conditions: list[str] = field(default_factory=list)
    expressions: dict[str, str] = field(default_factory=dict)


def inputs_from_query(items: Sequence[tuple[str, str]]) -> ApplyInputs:
    """Inputs from `GET ...$apply?subject=...` (also the query string of a POST without a body)."""
    inputs = ApplyInputs()
    for name, value in items:
        if name in _TRANSPORT:
            continue
        _put(inputs, name, value, name)
    return inputs


def inputs_from_parameters(payload: dict[str, Any]) -> ApplyInputs:
    """Inputs from a `Parameters` body."""
    if payload.get("resourceType") != "Parameters":
        raise BadRequest(
            Issue(
                f"the body must be a Parameters resource, not {payload.get('resourceType')!r}",
                expression="Parameters.resourceType",
            )
        )
    items = payload.get("parameter", [])
    if not isinstance(items, list):
        raise BadRequest(Issue("Parameters.parameter must be a list", expression="Parameters.parameter"))
    inputs = ApplyInputs()
    for index, item in enumerate(items):
        where = f"Parameters.parameter[{index}]"
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise BadRequest(Issue("every parameter needs a name", expression=f"{where}.name"))
        name = item["name"]
        if name in _IGNORED:
            continue
        _put(inputs, name, _value_text(item, name, where), where)
    return inputs


def _value_text(item: dict[str, Any], name: str, where: str) -> str:
    if name == "focus":
        coding = item.get("valueCoding")
        concept = item.get("valueCodeableConcept")
        if isinstance(concept, dict) and concept.get("coding"):
            coding = concept["coding"][0]
        if isinstance(coding, dict):
            if coding.get("system") not in (None, PROBLEM_AREA_SYSTEM):
                raise BadRequest(
                    Issue(
                        f"focus must be coded in {PROBLEM_AREA_SYSTEM}, not {coding.get('system')!r}",
                        expression=f"{where}.valueCoding.system",
                    )
                )
            return str(coding.get("code", ""))
    for key in ("valueString", "valueCode", "valueCanonical", "valueUri", "valueId"):
        if isinstance(item.get(key), str):
            return str(item[key])
    reference = item.get("valueReference")
    if isinstance(reference, dict) and isinstance(reference.get("reference"), str):
        return str(reference["reference"])
    raise BadRequest(Issue(f"the parameter '{name}' needs a value", expression=where, code="required"))


def _put(inputs: ApplyInputs, name: str, value: str, where: str) -> None:
    if name not in _OWN and name not in _IGNORED:
        allowed = ", ".join(_OWN + _IGNORED)
        raise BadRequest(
            Issue(
                f"$apply has no parameter '{name}' (it takes: {allowed})",
                expression=where,
                code="not-supported",
            )
        )
    if name in _IGNORED:
        return
    if name == "condition":
        inputs.conditions.append(value)
        inputs.expressions.setdefault("condition", where)
        return
    attribute = "plan_definition" if name == "planDefinition" else name
    if name in _SINGLE and getattr(inputs, attribute) is not None:
        raise BadRequest(Issue(f"the parameter '{name}' may be given only once", expression=where))
    setattr(inputs, attribute, value)
    inputs.expressions[name] = where


def _reference(value: str, resource_type: str, where: str) -> str:
    """The id of a `Type/id` reference (a full URL ending in it is accepted too)."""
    parsed = parse_reference(value)
    if parsed.resource_type != resource_type or parsed.resource_id is None:
        raise BadRequest(Issue(f"expected a reference {resource_type}/<id>, got {value!r}", expression=where))
    return parsed.resource_id


async def _live(
    repository: ResourceRepository, resource_type: str, resource_id: str, where: str
) -> dict[str, Any]:
    found = await repository.read(resource_type, resource_id)
    if found is None or found.deleted or found.content is None:
        raise Unprocessable(
            Issue(
                f"{resource_type}/{resource_id} is not known (or was deleted)",
                expression=where,
                code="not-found",
            )
        )
    # The plan is built from it: the request's AuditEvent names it with what the request read.
    note_read(f"{resource_type}/{resource_id}")
    content: dict[str, Any] = orjson.loads(found.content)
    return content


async def _plan_definition(
    repository: ResourceRepository, inputs: ApplyInputs, plan_definition_id: str | None
) -> StoredVersion:
    if plan_definition_id is not None:
        found = await repository.read("PlanDefinition", plan_definition_id)
        if found is None:
            raise NotFound(
                Issue(f"PlanDefinition/{plan_definition_id} is not known", expression="PlanDefinition")
            )
        if found.deleted:
            raise Gone(Issue(f"PlanDefinition/{plan_definition_id} was deleted", expression="PlanDefinition"))
        return found
    canonical = inputs.plan_definition
    if not canonical:
        raise BadRequest(
            Issue(
                "name the PlanDefinition: planDefinition=<url>|<version>, or use PlanDefinition/<id>/$apply",
                expression="planDefinition",
                code="required",
            )
        )
    by_canonical = await repository.find_by_canonical("PlanDefinition", canonical)
    if by_canonical is None:
        raise NotFound(
            Issue(
                f"no PlanDefinition has the canonical {canonical!r}",
                expression=inputs.expressions.get("planDefinition", "planDefinition"),
            )
        )
    return by_canonical


async def apply(
    engine: AsyncEngine, inputs: ApplyInputs, *, plan_definition_id: str | None = None
) -> dict[str, Any]:
    """Run `$apply` and return the draft CarePlan; nothing is written."""
    if inputs.plan_definition is not None and plan_definition_id is not None:
        raise BadRequest(
            Issue(
                "planDefinition is a type-level input; the instance URL already names the PlanDefinition",
                expression=inputs.expressions["planDefinition"],
            )
        )
    if not inputs.subject:
        raise BadRequest(Issue("subject (Patient/<id>) is required", expression="subject", code="required"))
    subject_where = inputs.expressions.get("subject", "subject")
    patient_id = _reference(inputs.subject, "Patient", subject_where)
    practitioner_id = None
    if inputs.practitioner is not None:
        where = inputs.expressions["practitioner"]
        practitioner_id = _reference(inputs.practitioner, "Practitioner", where)
    if inputs.focus is not None and inputs.focus not in PROBLEM_AREAS:
        raise BadRequest(
            Issue(
                f"focus {inputs.focus!r} is not an IPT problem area (one of {', '.join(PROBLEM_AREAS)})",
                expression=inputs.expressions.get("focus", "focus"),
                code="code-invalid",
            )
        )
    condition_where = inputs.expressions.get("condition", "condition")
    condition_ids = [_reference(value, "Condition", condition_where) for value in inputs.conditions]

    async with engine.connect() as connection:
        repository = ResourceRepository(connection)
        stored = await _plan_definition(repository, inputs, plan_definition_id)
        assert stored.content is not None
        plan_definition = orjson.loads(stored.content)
        await _live(repository, "Patient", patient_id, subject_where)
        if practitioner_id is not None:
            await _live(repository, "Practitioner", practitioner_id, inputs.expressions["practitioner"])
        for condition_id in condition_ids:
            condition = await _live(repository, "Condition", condition_id, condition_where)
            subject = reference_of(condition.get("subject"))
            if subject is None or subject.target != ("Patient", patient_id):
                raise Unprocessable(
                    Issue(
                        f"Condition/{condition_id} is not a condition of Patient/{patient_id}",
                        expression=condition_where,
                    )
                )
        definitions: dict[str, dict[str, Any]] = {}
        for canonical in _activity_canonicals(plan_definition):
            found = await repository.find_by_canonical("ActivityDefinition", canonical)
            if found is not None and found.content is not None:
                definitions[canonical] = orjson.loads(found.content)
    careplan = apply_plan_definition(
        plan_definition,
        definitions,
        subject=f"Patient/{patient_id}",
        practitioner=None if practitioner_id is None else f"Practitioner/{practitioner_id}",
        focus=inputs.focus,
        conditions=[f"Condition/{c}" for c in condition_ids],
    )
    # The draft must be a valid R4 CarePlan whatever the PlanDefinition held.
    return check_resource("CarePlan", careplan)


def _activity_canonicals(plan_definition: dict[str, Any]) -> list[str]:
    found: list[str] = []

    def walk(actions: Any) -> None:
        for action in actions if isinstance(actions, list) else []:
            canonical = action.get("definitionCanonical") if isinstance(action, dict) else None
            worksheet = isinstance(canonical, str) and canonical.startswith(f"{QUESTIONNAIRE_BASE}/")
            if isinstance(canonical, str) and not worksheet and canonical not in found:
                found.append(canonical)
            if isinstance(action, dict):
                walk(action.get("action"))

    walk(plan_definition.get("action"))
    return found
