"""IPT treatment plans: the `/ipt` document stored as ordinary FHIR resources.

https://hl7.org/fhir/R4/http.html#transaction, https://hl7.org/fhir/R4/careplan.html. A plan is written as
one FHIR transaction (`mappings.careplan.to_fhir_transaction`, run by `service.interactions.transaction`),
so it is all stored or nothing is; it is read back (`mappings.careplan.from_fhir`) from its CarePlan and
the resources the CarePlan references.

**The plan's version.** A plan is a CarePlan plus its Goals, Conditions, CareTeam and people, and a
revision writes a new version only of the resources that changed: edit one objective and only that Goal
changes, the CarePlan does not. The CarePlan's `versionId` alone would therefore miss changes, so the ETag
of a plan is a digest of the `Type/id/versionId` of every resource it was read from
(`W/"<16 hex digits>"`): any new version of any of them changes it.

**Revision.** `PUT` with `If-Match` compares that ETag with the plan as it is now (412 when it differs),
then writes the transaction with each updated resource's own `ifMatch` set to the version just compared,
so a write that slips in between the check and the transaction still fails the revision (412) and
nothing is written. Ids in the document must be the plan's own (a Goal id of another plan is refused), so
a revision can never overwrite a resource outside its plan. People are matched by identifier, never
updated (see `mappings.careplan`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from mappings.careplan import MappingError, from_fhir, to_fhir_transaction
from mappings.domain import TreatmentPlan
from mappings.references import reference_of
from service.errors import BadRequest, FhirError, Gone, Issue, NotFound, PreconditionFailed, Unprocessable
from service.interactions.transaction import process_bundle
from service.storage.repository import ResourceRepository
from service.storage.treatment_plans import careplan_ids_of_patient

Json = dict[str, Any]

# The resources a CarePlan of the mapping references directly, and those its CareTeam references.
_PLAN_REFERENCES = ("subject", "author", "careTeam", "addresses", "goal")
_TEAM_REFERENCES = ("participant",)
_MAPPING_PATH = re.compile(r"[A-Z][A-Za-z]*(?:[.\[(]\S*)?")


@dataclass(frozen=True, slots=True)
class StoredPlan:
    """A plan read back from FHIR, with the version of everything it was read from."""

    plan: TreatmentPlan
    etag: str
    last_modified: datetime
    versions: Mapping[str, int]
    """`Type/id` -> `versionId` of every resource the plan was read from."""


@dataclass(slots=True)
class PlanList:
    patient: str
    plans: list[StoredPlan] = field(default_factory=list)
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    """`(CarePlan id, why)` of the patient's CarePlans that are not IPT plans of the mapping."""


# --- the document --------------------------------------------------------------------------------------


def expression(location: Sequence[int | str]) -> str:
    """A pydantic location as a path into the document: `("goals", 1, "targets")` -> `goals[1].targets`."""
    text = ""
    for part in location:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "TreatmentPlan"


def validate_document(payload: Any) -> TreatmentPlan:
    """The document as a `TreatmentPlan`, or 422 with one issue per failing field."""
    if not isinstance(payload, dict):
        raise BadRequest(
            Issue("the body must be a JSON object holding one treatment plan", expression="TreatmentPlan")
        )
    try:
        return TreatmentPlan.model_validate(payload)
    except ValidationError as exc:
        issues = [
            Issue(
                f"{expression(error['loc'])}: {error['msg']}",
                expression=expression(error["loc"]),
                code="required" if error["type"] == "missing" else "invalid",
            )
            for error in exc.errors()
        ]
        raise Unprocessable(*issues) from None


def _without_ids(plan: TreatmentPlan) -> TreatmentPlan:
    """The same plan with no FHIR id: a POST creates a new plan, it never writes over stored resources."""
    data = plan.model_dump(mode="json")
    data["id"] = None
    data["care_team"]["id"] = None
    for diagnosis in data["diagnoses"]:
        diagnosis["id"] = None
    for goal in data["goals"]:
        goal["id"] = None
        for objective in goal["objectives"]:
            objective["id"] = None
    return TreatmentPlan.model_validate(data)


def _mapping_issue(error: MappingError) -> Unprocessable:
    message = str(error)
    head, separator, _ = message.partition(": ")
    where = head if separator and _MAPPING_PATH.fullmatch(head) else "CarePlan"
    return Unprocessable(
        Issue(f"this CarePlan cannot be read as an IPT treatment plan: {message}", expression=where)
    )


# --- reading -------------------------------------------------------------------------------------------


def _key(reference: Any) -> str | None:
    """`Type/id` of a relative reference, the only kind that names a stored resource; None for others.

    Read as compartments read it: `Patient/A/Patient/B` names neither patient, and an absolute URL is not
    this server's resource even if it ends in `Patient/B`.
    """
    parsed = reference_of(reference)
    return None if parsed is None else parsed.key


def _references(resource: Json, fields: Iterable[str]) -> list[str]:
    keys: list[str] = []
    for name in fields:
        value = resource.get(name)
        values = value if isinstance(value, list) else [value]
        for item in values:
            if name == "participant" and isinstance(item, dict):
                item = item.get("member")
            key = _key(item)
            if key is not None and key not in keys:
                keys.append(key)
    return keys


@dataclass(slots=True)
class _Resolved:
    resources: dict[str, Json] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)
    last_modified: datetime | None = None


async def _resolve(connection: AsyncConnection, careplan: Json, resolved: _Resolved) -> None:
    """Read what the CarePlan references, then what its CareTeams reference; missing ones stay out."""
    repository = ResourceRepository(connection)
    for contained in careplan.get("contained", []):
        if isinstance(contained, dict) and contained.get("id"):
            resolved.resources[f"#{contained['id']}"] = contained

    async def read(keys: Iterable[str]) -> None:
        for key in keys:
            if key in resolved.resources:
                continue
            resource_type, _, resource_id = key.partition("/")
            found = await repository.read(resource_type, resource_id)
            if found is None or found.deleted or found.content is None:
                continue
            resolved.resources[key] = orjson.loads(found.content)
            resolved.versions[key] = found.version_id
            if resolved.last_modified is None or found.last_updated > resolved.last_modified:
                resolved.last_modified = found.last_updated

    await read(_references(careplan, _PLAN_REFERENCES))
    teams = [
        resolved.resources[key]
        for key in [_key(team) for team in careplan.get("careTeam", [])]
        if key is not None and key in resolved.resources
    ]
    teams += [c for c in careplan.get("contained", []) if c.get("resourceType") == "CareTeam"]
    for team in teams:
        await read(_references(team, _TEAM_REFERENCES))


def _etag(versions: Mapping[str, int]) -> str:
    text = "\n".join(f"{key}/{versions[key]}" for key in sorted(versions))
    return f'W/"{hashlib.sha256(text.encode()).hexdigest()[:16]}"'


async def _read_on(connection: AsyncConnection, plan_id: str) -> StoredPlan:
    found = await ResourceRepository(connection).read("CarePlan", plan_id)
    if found is None:
        raise NotFound(Issue(f"no treatment plan has the id {plan_id!r}", expression="id"))
    if found.deleted or found.content is None:
        raise Gone(Issue(f"the CarePlan {plan_id} of this plan was deleted", expression="id"))
    careplan = orjson.loads(found.content)
    resolved = _Resolved(versions={f"CarePlan/{plan_id}": found.version_id}, last_modified=found.last_updated)
    await _resolve(connection, careplan, resolved)
    try:
        plan = from_fhir(careplan, resolved.resources)
    except MappingError as error:
        raise _mapping_issue(error) from None
    assert resolved.last_modified is not None
    return StoredPlan(plan, _etag(resolved.versions), resolved.last_modified, resolved.versions)


async def read_plan(engine: AsyncEngine, plan_id: str) -> StoredPlan:
    """The plan whose CarePlan has `plan_id`: 404 unknown, 410 deleted, 422 not a plan of the mapping."""
    async with engine.connect() as connection:
        # One snapshot for the CarePlan and everything it references.
        connection = await connection.execution_options(isolation_level="REPEATABLE READ")
        async with connection.begin():
            return await _read_on(connection, plan_id)


async def list_plans(engine: AsyncEngine, patient_id: str, *, limit: int) -> PlanList:
    """The patient's plans (CarePlans with `subject` the patient), up to `limit`, newest first."""
    async with engine.connect() as connection:
        plan_ids = await careplan_ids_of_patient(connection, patient_id, limit=limit)
    result = PlanList(patient=f"Patient/{patient_id}")
    for plan_id in plan_ids:
        try:
            result.plans.append(await read_plan(engine, plan_id))
        except (Unprocessable, NotFound, Gone) as error:
            result.unreadable.append((plan_id, str(error)))
    return result


async def plan_from_careplan(engine: AsyncEngine, careplan: Json) -> TreatmentPlan:
    """The document of a CarePlan that is not stored, such as the draft of `PlanDefinition/$apply`.

    Its references are resolved against the stored resources and its `contained` ones. Contained
    resources have no id of their own once stored, so the document leaves their ids out: posting it
    creates its CareTeam and Goals.
    """
    resolved = _Resolved()
    async with engine.connect() as connection:
        await _resolve(connection, careplan, resolved)
    try:
        plan = from_fhir({**careplan, "id": None} if "id" in careplan else careplan, resolved.resources)
    except MappingError as error:
        raise _mapping_issue(error) from None
    contained = {str(c.get("id")) for c in careplan.get("contained", []) if isinstance(c, dict)}
    data = plan.model_dump(mode="json")
    data["id"] = None
    if data["care_team"]["id"] in contained:
        data["care_team"]["id"] = None
    for goal in data["goals"]:
        goal["id"] = None if goal["id"] in contained else goal["id"]
        for objective in goal["objectives"]:
            objective["id"] = None if objective["id"] in contained else objective["id"]
    return TreatmentPlan.model_validate(data)


# --- writing -------------------------------------------------------------------------------------------


def _plan_id(response: Json) -> str:
    for entry in response.get("entry", []):
        location = (entry.get("response") or {}).get("location", "")
        if location.startswith("CarePlan/"):
            return str(location.split("/")[1])
    raise RuntimeError("the transaction response holds no CarePlan")


async def _store(engine: AsyncEngine, bundle: Json, *, base_url: str, max_entries: int) -> str:
    try:
        body = await process_bundle(
            engine, bundle, base_url=base_url, max_entries=max_entries, prefer="minimal"
        )
    except PreconditionFailed:
        raise PreconditionFailed(
            Issue(
                "a resource of this plan changed while the revision was written; read the plan again",
                expression="If-Match",
            )
        ) from None
    except FhirError as error:
        # The transaction names Bundle entries, which an /ipt client never saw: say what was being stored.
        issues = [
            Issue(f"storing the plan as FHIR failed: {issue.diagnostics}", expression="TreatmentPlan")
            for issue in error.issues
        ]
        raise type(error)(*issues) from None
    return _plan_id(orjson.loads(body))


async def create_plan(
    engine: AsyncEngine, plan: TreatmentPlan, *, base_url: str, max_entries: int
) -> StoredPlan:
    """Store a new plan as one transaction and read it back with its ids."""
    plan_id = await _store(
        engine, to_fhir_transaction(_without_ids(plan)), base_url=base_url, max_entries=max_entries
    )
    return await read_plan(engine, plan_id)


def _owned_ids(careplan_versions: Mapping[str, int], plan: TreatmentPlan) -> list[Issue]:
    """Issues for every id in the document that is not one of the current plan's resources."""
    problems = []

    def check(resource_type: str, resource_id: str | None, where: str) -> None:
        if resource_id is not None and f"{resource_type}/{resource_id}" not in careplan_versions:
            problems.append(
                Issue(
                    f"{resource_type}/{resource_id} is not part of this plan; "
                    "leave the id out to add a new one",
                    expression=where,
                )
            )

    check("CareTeam", plan.care_team.id, "care_team.id")
    for i, diagnosis in enumerate(plan.diagnoses):
        check("Condition", diagnosis.id, f"diagnoses[{i}].id")
    for i, goal in enumerate(plan.goals):
        check("Goal", goal.id, f"goals[{i}].id")
        for j, objective in enumerate(goal.objectives):
            check("Goal", objective.id, f"goals[{i}].objectives[{j}].id")
    return problems


async def revise_plan(
    engine: AsyncEngine,
    plan_id: str,
    plan: TreatmentPlan,
    *,
    if_match: str | None,
    base_url: str,
    max_entries: int,
) -> StoredPlan:
    """Write a revision of the plan: new versions of what changed only; 412 when `if_match` is stale."""
    if plan.id is not None and plan.id != plan_id:
        raise BadRequest(
            Issue(f"the document's id {plan.id!r} differs from the URL's {plan_id!r}", expression="id")
        )
    current = await read_plan(engine, plan_id)
    if if_match is not None and _normalised(if_match) != current.etag:
        raise PreconditionFailed(
            Issue(
                f"If-Match {if_match} is not the plan's current version {current.etag}; read the plan again",
                expression="If-Match",
            )
        )
    problems = _owned_ids(current.versions, plan)
    if problems:
        raise Unprocessable(*problems)
    bundle = to_fhir_transaction(plan.model_copy(update={"id": plan_id}))
    if if_match is not None:
        for entry in bundle["entry"]:
            request = entry["request"]
            version = current.versions.get(request["url"]) if request["method"] == "PUT" else None
            if version is not None:
                request["ifMatch"] = f'W/"{version}"'
    await _store(engine, bundle, base_url=base_url, max_entries=max_entries)
    return await read_plan(engine, plan_id)


def _normalised(etag: str) -> str:
    value = etag.strip()
    if not value.startswith("W/"):
        value = f"W/{value}" if value.startswith('"') else f'W/"{value}"'
    return value
