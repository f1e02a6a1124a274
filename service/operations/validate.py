"""`$validate`: would the server accept this resource (as a create, an update, a delete)? Nothing is stored.

https://hl7.org/fhir/R4/resource-operation-validate.html. The body is the resource itself or a
`Parameters` with `resource` and `mode` (`create`, `update` or `delete`; `update` and `delete` only on an
instance, `/{type}/{id}/$validate`). The checks are exactly those of the write: structure, required
bindings, then the write rules of the type (for a QuestionnaireResponse: its Questionnaire, references and
status lifecycle). Without a mode the resource is judged as a create.

The answer is always an OperationOutcome with status 200 when the validation ran, valid or not: errors in
it mean the write would be refused, warnings (an unfinished in-progress response) that it would be
accepted. A request that cannot be validated at all (no resource, an unknown mode) is a 400.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncEngine

from service.errors import BadRequest, FhirError, Issue, NotFound
from service.fhir.parsing import check_resource
from service.interactions.questionnaire_response import is_error, response_write_issues
from service.interactions.writes import write_pipeline
from service.operations.parameters import JSON, is_parameters, read_parameters, single
from service.storage.repository import ResourceRepository, StoredVersion

MODES: Final = ("create", "update", "delete")
_PARAMETERS: Final = frozenset({"resource", "mode", "profile"})


@dataclass(frozen=True, slots=True)
class ValidateRequest:
    resource: JSON | None
    mode: str | None


def read_request(resource_type: str, payload: JSON | None) -> ValidateRequest:
    """Take the resource and mode out of a `$validate` body (400 when they cannot be read)."""
    if payload is None:
        return ValidateRequest(None, None)
    if not is_parameters(payload) or resource_type == "Parameters":
        return ValidateRequest(payload, None)
    parameters = read_parameters(payload, known=_PARAMETERS, operation="$validate")
    profile = single(parameters, "profile")
    if profile is not None:
        raise BadRequest(
            Issue(
                "validation against a profile is not supported; only the base definitions and this "
                "server's rules apply",
                profile.expression,
                code="not-supported",
            )
        )
    resource = single(parameters, "resource")
    if resource is not None and resource.resource is None:
        raise BadRequest(
            Issue("'resource' must carry the resource to check", f"{resource.expression}.resource")
        )
    mode = single(parameters, "mode")
    mode_value = mode.value("valueCode", "valueString") if mode is not None else None
    if mode is not None and mode_value not in MODES:
        raise BadRequest(
            Issue(
                f"mode must be one of {', '.join(MODES)}, not {mode_value!r}",
                f"{mode.expression}.valueCode",
                code="code-invalid",
            )
        )
    return ValidateRequest(resource.resource if resource is not None else None, mode_value)


async def validate_resource(
    engine: AsyncEngine, resource_type: str, request: ValidateRequest, *, resource_id: str | None = None
) -> JSON:
    """Run every check of the write that `mode` describes and report the outcome; never writes."""
    mode = request.mode
    if mode in ("update", "delete") and resource_id is None:
        raise BadRequest(
            Issue(
                f"mode '{mode}' needs the resource's id: call /{resource_type}/<id>/$validate",
                "mode",
                code="invalid",
            )
        )
    if mode == "delete":
        assert resource_id is not None
        return await _validate_delete(engine, resource_type, resource_id)
    if request.resource is None:
        raise BadRequest(Issue("a resource to validate is required", "resource", code="required"))

    issues: list[JSON] = []
    try:
        content = check_resource(resource_type, request.resource)
    except FhirError as exc:
        return _outcome(_fhir_issues(exc))
    if mode == "update" or (resource_id is not None and content.get("id") not in (None, resource_id)):
        issues.extend(_id_issues(resource_type, content, resource_id))

    # A connection that is never committed: whatever the rules touch is rolled back when it closes.
    async with engine.connect() as connection:
        repository = ResourceRepository(connection)
        current: StoredVersion | None = None
        if mode == "update" and resource_id is not None:
            current = await repository.read(resource_type, resource_id)
        try:
            await write_pipeline().check(repository, resource_type, resource_id, content, current)
        except FhirError as exc:
            issues.extend(_fhir_issues(exc))
        else:
            if resource_type == "QuestionnaireResponse":
                issues.extend(await _response_warnings(repository, content, current))

    if not any(issue["severity"] in ("error", "fatal") for issue in issues):
        target = f"{resource_type}/{resource_id}" if mode == "update" else resource_type
        issues.insert(0, _information(f"{target} would be accepted as {_as(mode)}"))
    return _outcome(issues)


async def _response_warnings(
    repository: ResourceRepository, content: JSON, current: StoredVersion | None
) -> list[JSON]:
    """What is still missing from an acceptable response (the write rule only reports refusals)."""
    found = await response_write_issues(repository, content, current)
    return [issue.to_fhir("processing") for issue in found if not is_error(issue)]


async def _validate_delete(engine: AsyncEngine, resource_type: str, resource_id: str) -> JSON:
    async with engine.connect() as connection:
        current = await ResourceRepository(connection).read(resource_type, resource_id)
    if current is None:
        raise NotFound(Issue(f"{resource_type}/{resource_id} is not known", resource_type))
    state = " (it already is deleted)" if current.deleted else ""
    return _outcome([_information(f"{resource_type}/{resource_id} may be deleted{state}")])


def _id_issues(resource_type: str, content: JSON, resource_id: str | None) -> list[JSON]:
    body_id = content.get("id")
    if body_id is None:
        message = f"an update must carry the resource's id ({resource_id}) in the body"
        return [Issue(message, f"{resource_type}.id", code="required").to_fhir("required")]
    if body_id != resource_id:
        message = f"the resource's id {body_id!r} differs from the id in the URL {resource_id!r}"
        return [Issue(message, f"{resource_type}.id", code="invalid").to_fhir("invalid")]
    return []


def _fhir_issues(error: FhirError) -> list[JSON]:
    return [issue.to_fhir(error.issue_code) for issue in error.issues]


def _information(message: str) -> JSON:
    return Issue(message, severity="information").to_fhir("informational")


def _as(mode: str | None) -> str:
    return {"update": "an update", "create": "a create"}.get(mode or "create", "a create")


def _outcome(issues: list[dict[str, Any]]) -> JSON:
    return {"resourceType": "OperationOutcome", "issue": issues}
