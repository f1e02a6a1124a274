"""The IPT-native API: treatment plans in the shape clinicians write them, stored as FHIR.

Each route translates HTTP to one call of `service.interactions.treatment_plans`. The document is JSON
(`application/json`), its schema `TreatmentPlan`; errors are OperationOutcomes like everywhere else.
How a plan maps to FHIR: docs/mapping.md; how to use these routes: docs/treatment-plans.md.
"""

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Path, Query, Request, Response

from service.api.deps import base_url_of, engine_of, settings_of
from service.api.negotiation import check_request_format
from service.api.openapi_docs import (
    TREATMENT_PLAN_LIST_SCHEMA,
    document_request_body,
    document_response,
    error_responses,
)
from service.errors import BadRequest, Issue, PayloadTooLarge
from service.fhir.bundle import http_date
from service.fhir.parsing import check_resource, loads
from service.interactions.treatment_plans import (
    StoredPlan,
    create_plan,
    list_plans,
    plan_from_careplan,
    read_plan,
    revise_plan,
    validate_document,
)

router = APIRouter(prefix="/ipt", tags=["IPT treatment plans"])

JSON = "application/json"
ID_PATTERN = r"^[A-Za-z0-9\-.]{1,64}$"
PlanId = Annotated[str, Path(pattern=ID_PATTERN, description="The id of the plan's CarePlan.")]
IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        description='The plan\'s ETag as last read (`W/"…"`); a plan changed since then gets 412.',
    ),
]
_PATIENT = r"^(Patient/)?[A-Za-z0-9\-.]{1,64}$"
_LIST_LIMIT = 100


async def _read_json(request: Request, limit: int, what: str) -> Any:
    check_request_format(request)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(Issue(f"the body is larger than the limit of {limit} bytes", expression=what))
    body = await request.body()
    if len(body) > limit:
        raise PayloadTooLarge(Issue(f"the body is larger than the limit of {limit} bytes", expression=what))
    try:
        return loads(body, root=what)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(Issue(f"the body is not valid JSON: {exc}", expression=what)) from None


def _document(stored: StoredPlan, *, status_code: int = 200, location: str | None = None) -> Response:
    headers = {"ETag": stored.etag, "Last-Modified": http_date(stored.last_modified)}
    if location is not None:
        headers["Location"] = location
    body = stored.plan.model_dump_json(exclude_none=True).encode()
    return Response(content=body, status_code=status_code, headers=headers, media_type=JSON)


def _location(request: Request, plan_id: str) -> str:
    return f"{str(request.base_url).rstrip('/')}/ipt/treatment-plans/{plan_id}"


@router.post(
    "/treatment-plans/$from-careplan",
    summary="The document of a CarePlan that is not stored (such as a $apply draft)",
    description="Reads the CarePlan in the body (the draft of `PlanDefinition/$apply`, or any CarePlan of "
    "the mapping's shape) as a treatment-plan document, resolving its references against the stored "
    "resources and its `contained` ones. Nothing is stored: revise the document and POST it to "
    "`/ipt/treatment-plans`. A CarePlan that cannot be read as a plan (for instance a draft without a "
    "practitioner, so with no therapist) gets 422 naming the element.",
    operation_id="treatment_plan_from_careplan",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/fhir+json": {"schema": {"$ref": "#/components/schemas/CarePlan"}},
                JSON: {"schema": {"$ref": "#/components/schemas/CarePlan"}},
            },
        }
    },
    responses={
        **document_response(200, "The plan as a document"),
        **error_responses(400, 406, 413, 415, 422),
    },
    response_class=Response,
)
async def from_careplan(request: Request) -> Response:
    engine = engine_of(request)
    settings = settings_of(request)
    payload = await _read_json(request, settings.max_body_bytes, "CarePlan")
    if not isinstance(payload, dict):
        raise BadRequest(Issue("the body must be a CarePlan", expression="CarePlan"))
    careplan = check_resource("CarePlan", payload)
    plan = await plan_from_careplan(engine, careplan)
    return Response(content=plan.model_dump_json(exclude_none=True), media_type=JSON)


@router.post(
    "/treatment-plans",
    summary="Store a treatment plan",
    description="Validates the document and stores it as one FHIR transaction: the client, therapist and "
    "care-team people (matched by their first identifier, created only when new), the diagnoses as "
    "Conditions, the CareTeam, the goals and objectives as Goals, and the CarePlan. Answers 201 with the "
    "document as stored, FHIR ids included; `Location` names the plan by its CarePlan id. Ids in the "
    "body are ignored: a POST always creates a new plan. An invalid document gets 422 with one issue per "
    "field (`expression` such as `goals[1].objectives[0].description`) and nothing is stored.",
    operation_id="create_treatment_plan",
    status_code=201,
    openapi_extra=document_request_body(),
    responses={
        **document_response(201, "Stored; the document with its FHIR ids"),
        **error_responses(400, 406, 413, 415, 422),
    },
    response_class=Response,
)
async def create(request: Request) -> Response:
    engine = engine_of(request)
    settings = settings_of(request)
    base_url = base_url_of(request)
    plan = validate_document(await _read_json(request, settings.max_body_bytes, "TreatmentPlan"))
    stored = await create_plan(engine, plan, base_url=base_url, max_entries=settings.max_bundle_entries)
    assert stored.plan.id is not None
    return _document(stored, status_code=201, location=_location(request, stored.plan.id))


@router.get(
    "/treatment-plans",
    summary="The treatment plans of a client",
    description=f"The plans whose CarePlan has `subject` the patient (`CarePlan?subject=Patient/<id>`), "
    f"newest first, at most {_LIST_LIMIT}. CarePlans of the patient that are not IPT plans of the mapping "
    "are listed under `unreadable` with the reason, not left out silently.",
    operation_id="list_treatment_plans",
    responses={
        200: {
            "description": "The plans",
            "content": {JSON: {"schema": TREATMENT_PLAN_LIST_SCHEMA}},
        },
        **error_responses(400, 406),
    },
    response_class=Response,
)
async def list_for_patient(
    request: Request,
    patient: Annotated[
        str, Query(pattern=_PATIENT, description="The client: `Patient/<id>` or the bare id.")
    ],
) -> Response:
    engine = engine_of(request)
    patient_id = patient.removeprefix("Patient/")
    found = await list_plans(engine, patient_id, limit=_LIST_LIMIT)
    plans = [orjson.Fragment(stored.plan.model_dump_json(exclude_none=True)) for stored in found.plans]
    body = {
        "patient": found.patient,
        "total": len(plans),
        "plans": plans,
        "unreadable": [{"id": plan_id, "diagnostics": why} for plan_id, why in found.unreadable],
    }
    return Response(content=orjson.dumps(body), media_type=JSON)


@router.get(
    "/treatment-plans/{plan_id}",
    summary="Read a treatment plan",
    description="The plan rebuilt from its CarePlan and the resources the CarePlan references, so edits "
    "made through `/fhir` show. `ETag` is the plan's version: a digest of the versions of every resource "
    "the plan was read from, which changes when any of them does. A CarePlan that does not follow the "
    "mapping gets 422 naming the element that cannot be read.",
    operation_id="read_treatment_plan",
    responses={**document_response(200, "The plan"), **error_responses(400, 404, 406, 410, 422)},
    response_class=Response,
)
async def read(plan_id: PlanId, request: Request) -> Response:
    engine = engine_of(request)
    return _document(await read_plan(engine, plan_id))


@router.put(
    "/treatment-plans/{plan_id}",
    summary="Revise a treatment plan",
    description="Writes the revised document as one FHIR transaction. Only resources whose content changed "
    "get a new version. Keep the ids of what you revise; leave the id out of a goal, objective or "
    "diagnosis to add a new one; an id that is not this plan's gets 422. With `If-Match` (recommended), a "
    "plan that changed since it was read gets 412 and nothing is written.",
    operation_id="revise_treatment_plan",
    openapi_extra=document_request_body(),
    responses={
        **document_response(200, "Revised; the plan as stored now"),
        **error_responses(400, 404, 406, 410, 412, 413, 415, 422),
    },
    response_class=Response,
)
async def revise(plan_id: PlanId, request: Request, if_match: IfMatch = None) -> Response:
    engine = engine_of(request)
    settings = settings_of(request)
    base_url = base_url_of(request)
    plan = validate_document(await _read_json(request, settings.max_body_bytes, "TreatmentPlan"))
    stored = await revise_plan(
        engine,
        plan_id,
        plan,
        if_match=if_match,
        base_url=base_url,
        max_entries=settings.max_bundle_entries,
    )
    return _document(stored)
