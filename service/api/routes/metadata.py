"""`GET /fhir/metadata`: https://hl7.org/fhir/R4/http.html#capabilities"""

from datetime import UTC, datetime
from importlib.metadata import version

from fastapi import APIRouter, Request, Response

from service.api.deps import base_url_of, settings_of
from service.api.openapi_docs import error_responses, resource_response
from service.api.responses import json_response
from service.fhir.capability import capability_statement

router = APIRouter(prefix="/fhir")
_STARTED = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@router.get(
    "/metadata",
    tags=["System"],
    summary="The CapabilityStatement: what this server implements",
    operation_id="capabilities",
    responses={
        **resource_response("CapabilityStatement", 200, "The CapabilityStatement"),
        **error_responses(406),
    },
    response_class=Response,
)
async def metadata(request: Request) -> Response:
    settings = settings_of(request)
    base_url = base_url_of(request)
    statement = capability_statement(
        base_url=base_url,
        software_version=version("ipt-fhir"),
        date=_STARTED,
        cors=bool(settings.cors_origins),
    )
    return json_response(statement)
