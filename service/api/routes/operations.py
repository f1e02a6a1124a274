"""Operations (`$validate`, `$populate`, `$extract`): https://hl7.org/fhir/R4/operations.html

Generated from `service.fhir.operation_definitions`: `$validate` on every served type (type and instance
level), `Questionnaire/$populate` and `QuestionnaireResponse/$extract` (SDC). None of them stores anything.
Bodies are read raw, like the resource routes, so that every error is an OperationOutcome.
"""

from typing import Any

from fastapi import APIRouter, Request, Response

from service.api.deps import engine_of, settings_of
from service.api.negotiation import FHIR_JSON, check_request_format
from service.api.openapi_docs import error_responses
from service.api.responses import json_response
from service.api.routes.resources import ResourceId
from service.errors import Issue, PayloadTooLarge
from service.fhir.examples import EXAMPLES
from service.fhir.operation_definitions import EXTRACT, POPULATE, VALIDATE
from service.fhir.parsing import parse_json
from service.fhir.registry import RESOURCE_DEFINITIONS
from service.operations.extract import extract_stored, extract_submitted
from service.operations.populate import populate
from service.operations.validate import read_request, validate_resource

_PHQ9 = "http://example.org/fhir/ipt/Questionnaire/phq-9|1.0.0"

PARAMETERS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Parameters",
    "description": "Operation inputs or outputs: http://hl7.org/fhir/R4/parameters.html",
    "required": ["resourceType"],
    "properties": {
        "resourceType": {"type": "string", "enum": ["Parameters"]},
        "parameter": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name"],
                "properties": {"name": {"type": "string"}, "resource": {"type": "object"}},
                "additionalProperties": True,
            },
        },
    },
    "additionalProperties": True,
}

_OUTCOME_EXAMPLE = {
    "resourceType": "OperationOutcome",
    "issue": [
        {
            "severity": "error",
            "code": "required",
            "diagnostics": "'Little interest or pleasure in doing things' (linkId phq9-1) is required "
            "but has no answer",
            "expression": ["QuestionnaireResponse"],
        }
    ],
}
_RESPONSE_EXAMPLE = {
    "resourceType": "QuestionnaireResponse",
    "questionnaire": _PHQ9,
    "status": "in-progress",
    "subject": {"reference": "Patient/example"},
    "author": {"reference": "Patient/example"},
    "authored": "2024-05-31T10:00:00Z",
    "item": [{"linkId": "instructions", "text": "Over the last 2 weeks, how often ..."}],
}
_POPULATE_EXAMPLE = {
    "resourceType": "Parameters",
    "parameter": [
        {"name": "canonical", "valueCanonical": _PHQ9},
        {"name": "subject", "valueReference": {"reference": "Patient/example"}},
    ],
}
_EXTRACT_EXAMPLE = {
    "resourceType": "Parameters",
    "parameter": [
        {
            "name": "return",
            "resource": {
                "resourceType": "Bundle",
                "type": "transaction",
                "entry": [
                    {
                        "fullUrl": "urn:uuid:0b7d5f0e-2f7e-5c4f-9a51-6f7c2b1d9e11",
                        "resource": EXAMPLES["Observation"],
                        "request": {
                            "method": "PUT",
                            "url": "Observation/0b7d5f0e-2f7e-5c4f-9a51-6f7c2b1d9e11",
                        },
                    }
                ],
            },
        }
    ],
}


def _body(schema: dict[str, Any], examples: dict[str, Any], *, required: bool = True) -> dict[str, Any]:
    content = {
        "schema": schema,
        "examples": {name: {"value": value} for name, value in examples.items()},
    }
    return {
        "requestBody": {
            "required": required,
            "content": {FHIR_JSON: content, "application/json": {"schema": schema}},
        }
    }


def _ok(schema: dict[str, Any], description: str, example: dict[str, Any]) -> dict[int | str, Any]:
    return {200: {"description": description, "content": {FHIR_JSON: {"schema": schema, "example": example}}}}


async def _read_optional_body(request: Request, limit: int) -> dict[str, Any] | None:
    """The JSON body, or None when there is none (an instance `$validate` in delete mode needs none)."""
    check_request_format(request)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(Issue(f"the body is larger than the limit of {limit} bytes"))
    body = await request.body()
    if len(body) > limit:
        raise PayloadTooLarge(Issue(f"the body is larger than the limit of {limit} bytes"))
    if not body.strip():
        return None
    return parse_json(body)


async def _read_body(request: Request, limit: int) -> dict[str, Any]:
    payload = await _read_optional_body(request, limit)
    return parse_json(b"") if payload is None else payload


def _add_validate(router: APIRouter, name: str) -> None:
    schema = {"oneOf": [{"$ref": f"#/components/schemas/{name}"}, PARAMETERS_SCHEMA]}
    examples: dict[str, Any] = {
        "parameters": {
            "resourceType": "Parameters",
            "parameter": [{"name": "mode", "valueCode": "create"}]
            + ([{"name": "resource", "resource": EXAMPLES[name]}] if name in EXAMPLES else []),
        }
    }
    if name in EXAMPLES:
        examples["resource"] = EXAMPLES[name]
    outcome = {"$ref": "#/components/schemas/OperationOutcome"}
    description = (
        "Checks the resource (the body, or `resource` in a `Parameters` with an optional `mode`) exactly "
        "as a write would, and stores nothing. Answers 200 with an OperationOutcome whether or not it is "
        "valid: `error` issues mean the write would be refused (each names its element in `expression`), "
        "`warning` issues that it would be accepted but is incomplete (an in-progress response), and an "
        "`information` issue that all is well. Without `mode` the resource is judged as a create."
    )

    @router.post(
        f"/{name}/$validate",
        tags=[name],
        summary=f"Validate a {name} without storing it",
        description=description + " Modes `update` and `delete` need the instance URL.",
        operation_id=f"validate_{name}",
        openapi_extra=_body(schema, examples),
        responses={
            **_ok(outcome, "The outcome of the validation", _OUTCOME_EXAMPLE),
            **error_responses(400, 406, 413, 415),
        },
        response_class=Response,
    )
    async def validate_type(request: Request) -> Response:
        engine = engine_of(request)
        settings = settings_of(request)
        payload = await _read_body(request, settings.max_body_bytes)
        outcome = await validate_resource(engine, name, read_request(name, payload))
        return json_response(outcome)

    @router.post(
        f"/{name}/{{resource_id}}/$validate",
        tags=[name],
        summary=f"Validate an update or delete of a {name} without doing it",
        description=description + " Here `mode` may also be `update` (the body's id must be the URL's) or "
        "`delete` (no resource needed; 404 when the resource never existed).",
        operation_id=f"validate_instance_{name}",
        openapi_extra=_body(schema, examples, required=False),
        responses={
            **_ok(outcome, "The outcome of the validation", _OUTCOME_EXAMPLE),
            **error_responses(400, 404, 406, 413, 415),
        },
        response_class=Response,
    )
    async def validate_instance(resource_id: ResourceId, request: Request) -> Response:
        engine = engine_of(request)
        settings = settings_of(request)
        payload = await _read_optional_body(request, settings.max_body_bytes)
        outcome = await validate_resource(engine, name, read_request(name, payload), resource_id=resource_id)
        return json_response(outcome)


def _add_populate(router: APIRouter) -> None:
    description = (
        "An `in-progress` QuestionnaireResponse for the patient named by `subject` (required, "
        "`valueReference`), citing the worksheet as `url|version`, with `author` (the `context` named "
        "`user`, else the patient) and `authored` set, pre-filled with the answers of the patient's latest "
        "response to the same worksheet that still fit it (else the form's initial values). Returned as "
        "`Parameters` with `response` and `issues`; nothing is stored: POST the response once filled in."
    )
    ok = _ok(
        PARAMETERS_SCHEMA,
        "The pre-filled response and the notes on it",
        {
            "resourceType": "Parameters",
            "parameter": [
                {"name": "response", "resource": _RESPONSE_EXAMPLE},
                {
                    "name": "issues",
                    "resource": {
                        "resourceType": "OperationOutcome",
                        "issue": [
                            {
                                "severity": "information",
                                "code": "informational",
                                "diagnostics": "Patient/example has no earlier response to this worksheet; "
                                "only the form's initial values are filled in",
                            }
                        ],
                    },
                },
            ],
        },
    )

    @router.post(
        "/Questionnaire/$populate",
        tags=["Questionnaire"],
        summary="Pre-fill a worksheet for a patient (SDC $populate)",
        description=description + " Name the worksheet with exactly one of `questionnaire` (the resource, or "
        "its canonical), `canonical`, `identifier` or `questionnaireRef`.",
        operation_id="populate_Questionnaire",
        openapi_extra=_body(PARAMETERS_SCHEMA, {"canonical": _POPULATE_EXAMPLE}),
        responses={**ok, **error_responses(400, 406, 413, 415, 422)},
        response_class=Response,
    )
    async def populate_type(request: Request) -> Response:
        engine = engine_of(request)
        settings = settings_of(request)
        payload = await _read_body(request, settings.max_body_bytes)
        return json_response(await populate(engine, payload))

    instance_example = {"resourceType": "Parameters", "parameter": _POPULATE_EXAMPLE["parameter"][1:]}

    @router.post(
        "/Questionnaire/{resource_id}/$populate",
        tags=["Questionnaire"],
        summary="Pre-fill this worksheet for a patient (SDC $populate)",
        description=description,
        operation_id="populate_instance_Questionnaire",
        openapi_extra=_body(PARAMETERS_SCHEMA, {"subject": instance_example}),
        responses={**ok, **error_responses(400, 404, 406, 410, 413, 415, 422)},
        response_class=Response,
    )
    async def populate_instance(resource_id: ResourceId, request: Request) -> Response:
        engine = engine_of(request)
        settings = settings_of(request)
        payload = await _read_body(request, settings.max_body_bytes)
        return json_response(await populate(engine, payload, questionnaire_id=resource_id))


def _add_extract(router: APIRouter) -> None:
    ok = _ok(PARAMETERS_SCHEMA, "`return`: a transaction Bundle of Observations; `issues`", _EXTRACT_EXAMPLE)
    schema = {"oneOf": [{"$ref": "#/components/schemas/QuestionnaireResponse"}, PARAMETERS_SCHEMA]}
    completed = {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": _PHQ9,
        "status": "completed",
        "subject": {"reference": "Patient/example"},
        "item": [
            {
                "linkId": "phq9-1",
                "answer": [{"valueCoding": {"system": "http://loinc.org", "code": "LA6570-1"}}],
            }
        ],
    }

    @router.post(
        "/QuestionnaireResponse/$extract",
        tags=["QuestionnaireResponse"],
        summary="Observations from a response in the body (SDC $extract)",
        description="The Observations a completed response yields (for the PHQ-9: the total score, LOINC "
        "44261-6, computed from the answers), as a transaction Bundle of POSTs in `Parameters.return`; "
        "nothing is stored. The response (the body, or `questionnaire-response` in a `Parameters`) is "
        "checked as a create would check it: 422 with every issue when it would be refused.",
        operation_id="extract_QuestionnaireResponse",
        openapi_extra=_body(schema, {"response": completed}),
        responses={**ok, **error_responses(400, 406, 413, 415, 422)},
        response_class=Response,
    )
    async def extract_type(request: Request) -> Response:
        engine = engine_of(request)
        settings = settings_of(request)
        payload = await _read_body(request, settings.max_body_bytes)
        return json_response(await extract_submitted(engine, payload))

    instance_description = (
        "The Observations this stored response yields, as a transaction Bundle of PUTs to the ids the server "
        "uses when it extracts them by itself on completion (so the Bundle is idempotent); nothing is stored."
    )
    instance_responses = {**ok, **error_responses(400, 404, 406, 410, 422)}

    @router.get(
        "/QuestionnaireResponse/{resource_id}/$extract",
        tags=["QuestionnaireResponse"],
        summary="Observations from a stored response (SDC $extract)",
        description=instance_description,
        operation_id="extract_instance_QuestionnaireResponse",
        responses=instance_responses,
        response_class=Response,
    )
    async def extract_instance(resource_id: ResourceId, request: Request) -> Response:
        engine = engine_of(request)
        return json_response(await extract_stored(engine, resource_id))

    @router.post(
        "/QuestionnaireResponse/{resource_id}/$extract",
        tags=["QuestionnaireResponse"],
        summary="Observations from a stored response (SDC $extract)",
        description=instance_description + " A body, if any, is ignored.",
        operation_id="extract_instance_post_QuestionnaireResponse",
        responses=instance_responses,
        response_class=Response,
    )
    async def extract_instance_post(resource_id: ResourceId, request: Request) -> Response:
        engine = engine_of(request)
        return json_response(await extract_stored(engine, resource_id))


def build_router() -> APIRouter:
    operations = APIRouter(prefix="/fhir")
    for spec in RESOURCE_DEFINITIONS:
        if VALIDATE.applies_to(spec.name):
            _add_validate(operations, spec.name)
    if POPULATE.applies_to("Questionnaire"):
        _add_populate(operations)
    if EXTRACT.applies_to("QuestionnaireResponse"):
        _add_extract(operations)
    return operations


router = build_router()
