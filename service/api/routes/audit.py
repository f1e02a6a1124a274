"""The audit trail, read-only: `GET /fhir/AuditEvent/{id}` and `GET /fhir/AuditEvent?…`.

AuditEvents are written by the server alone (see `service.api.audit`); no route creates, changes or
deletes one, and reading them needs a scope that names AuditEvent itself.
"""

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response

from service.api.deps import base_url_of, engine_of, settings_of
from service.api.openapi_docs import bundle_response, error_responses, resource_response
from service.api.responses import json_response, version_headers
from service.interactions.read import read_resource
from service.interactions.search import SearchOptions, search_type

router = APIRouter(prefix="/fhir")


@router.get(
    "/AuditEvent",
    tags=["AuditEvent"],
    summary="Search the audit trail (needs an AuditEvent scope, e.g. system/AuditEvent.rs)",
    description="Parameters: date, agent, entity, patient, type, subtype, outcome, action, address, altid, "
    "_id, _lastUpdated, _count, _sort.",
    operation_id="search_AuditEvent",
    responses={**bundle_response("searchset"), **error_responses(400, 406)},
    response_class=Response,
)
async def search_audit(request: Request) -> Response:
    engine = engine_of(request)
    settings = settings_of(request)
    base_url = base_url_of(request)
    options = SearchOptions(
        base_url=base_url,
        strict=False,
        default_count=settings.default_page_size,
        max_count=settings.max_page_size,
    )
    parameters = [(k, v) for k, v in request.query_params.multi_items() if k != "_format"]
    return json_response(await search_type(engine, "AuditEvent", parameters, options))


@router.get(
    "/AuditEvent/{resource_id}",
    tags=["AuditEvent"],
    summary="Read one AuditEvent",
    operation_id="read_AuditEvent",
    responses={**resource_response("AuditEvent", 200, "The AuditEvent"), **error_responses(400, 404, 406)},
    response_class=Response,
)
async def read_audit(
    request: Request, resource_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9\-.]{1,64}$")]
) -> Response:
    engine = engine_of(request)
    base_url = base_url_of(request)
    stored = await read_resource(engine, "AuditEvent", resource_id)
    assert stored.content is not None
    return json_response(stored.content, headers=version_headers(stored, base_url=base_url))
