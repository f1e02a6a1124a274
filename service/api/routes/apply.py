"""`PlanDefinition/$apply`: https://hl7.org/fhir/R4/plandefinition-operation-apply.html

Type level (`planDefinition` names the protocol by canonical) and instance level, each as POST with a
`Parameters` body (or an empty body and the inputs in the query string) and as GET with the inputs in the
query string. The inputs and the draft CarePlan: `service.operations.apply`, `service.fhir.apply`.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response

from service.api.deps import engine_of, settings_of
from service.api.negotiation import FHIR_JSON, check_request_format
from service.api.openapi_docs import error_responses
from service.api.responses import json_response
from service.errors import Issue, PayloadTooLarge
from service.fhir.parsing import parse_json
from service.operations.apply import ApplyInputs, apply, inputs_from_parameters, inputs_from_query

router = APIRouter(prefix="/fhir", tags=["PlanDefinition"])

_PLAN_DEFINITION = "http://example.org/fhir/ipt/PlanDefinition/ipt-depression|1.0.0"
_DESCRIPTION = (
    "A draft CarePlan (`status` draft, `intent` proposal, `instantiatesCanonical` the PlanDefinition) for "
    "`subject` from the IPT protocol: the course of sessions, each phase with its sessions, and the "
    "techniques and worksheets whose applicability conditions hold for `focus` (the problem area: `grief`, "
    "`role-dispute`, `role-transition` or `interpersonal-deficits`); the protocol's goals as contained "
    "Goals and a contained CareTeam. `practitioner` becomes author and therapist; `condition` "
    "(repeatable) the diagnoses it addresses. Returned, not stored: turn it into a treatment-plan document "
    "with `POST /ipt/treatment-plans/$from-careplan`, revise it and post it to `/ipt/treatment-plans`."
)
_PARAMETERS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Parameters",
    "description": "https://hl7.org/fhir/R4/parameters.html",
    "required": ["resourceType"],
    "properties": {
        "resourceType": {"type": "string", "enum": ["Parameters"]},
        "parameter": {
            "type": "array",
            "items": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}},
        },
    },
}


def _example(*, type_level: bool) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = []
    if type_level:
        parameters.append({"name": "planDefinition", "valueCanonical": _PLAN_DEFINITION})
    parameters += [
        {"name": "subject", "valueString": "Patient/example"},
        {"name": "practitioner", "valueString": "Practitioner/example"},
        {"name": "focus", "valueCode": "grief"},
    ]
    return {"resourceType": "Parameters", "parameter": parameters}


def _request_body(*, type_level: bool) -> dict[str, Any]:
    content = {"schema": _PARAMETERS_SCHEMA, "example": _example(type_level=type_level)}
    return {
        "requestBody": {
            "required": False,
            "content": {FHIR_JSON: content, "application/json": {"schema": _PARAMETERS_SCHEMA}},
        }
    }


_OK: dict[int | str, Any] = {
    200: {
        "description": "The draft CarePlan (not stored)",
        "content": {FHIR_JSON: {"schema": {"$ref": "#/components/schemas/CarePlan"}}},
    }
}

PlanDefinitionId = Annotated[
    str, Path(pattern=r"^[A-Za-z0-9\-.]{1,64}$", description="Logical id of the PlanDefinition.")
]
Subject = Annotated[str, Query(description="The client: `Patient/<id>`.")]
Practitioner = Annotated[
    str | None, Query(description="`Practitioner/<id>`: author, performer and therapist of the draft.")
]
Focus = Annotated[
    str | None,
    Query(
        description="The problem area: `grief`, `role-dispute`, `role-transition`, `interpersonal-deficits`."
    ),
]
Condition = Annotated[
    list[str] | None,
    Query(description="`Condition/<id>` of the subject that the plan addresses; repeatable."),
]
Canonical = Annotated[str, Query(alias="planDefinition", description="The PlanDefinition's `url|version`.")]


async def _inputs(request: Request, limit: int) -> ApplyInputs:
    check_request_format(request)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(
            Issue(f"the body is larger than the limit of {limit} bytes", expression="Parameters")
        )
    body = await request.body()
    if len(body) > limit:
        raise PayloadTooLarge(
            Issue(f"the body is larger than the limit of {limit} bytes", expression="Parameters")
        )
    if not body.strip():
        return inputs_from_query(list(request.query_params.multi_items()))
    return inputs_from_parameters(parse_json(body))


@router.post(
    "/PlanDefinition/$apply",
    summary="Apply a PlanDefinition named by canonical to a patient",
    description=_DESCRIPTION,
    operation_id="apply_PlanDefinition",
    openapi_extra=_request_body(type_level=True),
    responses={**_OK, **error_responses(400, 404, 406, 413, 415, 422)},
    response_class=Response,
)
async def apply_type(request: Request) -> Response:
    engine = engine_of(request)
    settings = settings_of(request)
    return json_response(await apply(engine, await _inputs(request, settings.max_body_bytes)))


@router.get(
    "/PlanDefinition/$apply",
    summary="Apply a PlanDefinition named by canonical to a patient",
    description=_DESCRIPTION,
    operation_id="apply_PlanDefinition_get",
    responses={**_OK, **error_responses(400, 404, 406, 422)},
    response_class=Response,
)
async def apply_type_get(
    request: Request,
    plan_definition: Canonical,
    subject: Subject,
    practitioner: Practitioner = None,
    focus: Focus = None,
    condition: Condition = None,
) -> Response:
    engine = engine_of(request)
    inputs = inputs_from_query(list(request.query_params.multi_items()))
    return json_response(await apply(engine, inputs))


@router.post(
    "/PlanDefinition/{resource_id}/$apply",
    summary="Apply this PlanDefinition to a patient",
    description=_DESCRIPTION,
    operation_id="apply_instance_PlanDefinition",
    openapi_extra=_request_body(type_level=False),
    responses={**_OK, **error_responses(400, 404, 406, 410, 413, 415, 422)},
    response_class=Response,
)
async def apply_instance(resource_id: PlanDefinitionId, request: Request) -> Response:
    engine = engine_of(request)
    settings = settings_of(request)
    inputs = await _inputs(request, settings.max_body_bytes)
    return json_response(await apply(engine, inputs, plan_definition_id=resource_id))


@router.get(
    "/PlanDefinition/{resource_id}/$apply",
    summary="Apply this PlanDefinition to a patient",
    description=_DESCRIPTION,
    operation_id="apply_instance_PlanDefinition_get",
    responses={**_OK, **error_responses(400, 404, 406, 410, 422)},
    response_class=Response,
)
async def apply_instance_get(
    resource_id: PlanDefinitionId,
    request: Request,
    subject: Subject,
    practitioner: Practitioner = None,
    focus: Focus = None,
    condition: Condition = None,
) -> Response:
    engine = engine_of(request)
    inputs = inputs_from_query(list(request.query_params.multi_items()))
    return json_response(await apply(engine, inputs, plan_definition_id=resource_id))
