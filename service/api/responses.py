"""FHIR responses: the media type, version headers and `Prefer` handling."""

from typing import Any, Literal

import orjson
from fastapi import Response

from service.api.negotiation import FHIR_JSON
from service.errors import Issue, operation_outcome
from service.fhir.bundle import http_date
from service.storage.repository import StoredVersion

ReturnPreference = Literal["minimal", "representation", "OperationOutcome"]


class FhirResponse(Response):
    media_type = FHIR_JSON


def json_response(
    body: bytes | dict[str, Any], *, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return FhirResponse(content=content, status_code=status_code, headers=headers)


def return_preference(prefer: str | None) -> ReturnPreference:
    """Read `Prefer: return=…` (https://hl7.org/fhir/R4/http.html#ops); representation by default."""
    for part in (prefer or "").split(","):
        name, _, value = part.strip().partition("=")
        if name.strip().lower() == "return":
            value = value.strip().strip('"')
            if value == "minimal":
                return "minimal"
            if value == "OperationOutcome":
                return "OperationOutcome"
    return "representation"


def version_headers(version: StoredVersion, *, base_url: str, location: bool = False) -> dict[str, str]:
    headers = {"ETag": f'W/"{version.version_id}"', "Last-Modified": http_date(version.last_updated)}
    if location:
        headers["Location"] = f"{base_url}/{version.resource_type}/{version.id}/_history/{version.version_id}"
    return headers


def write_response(
    version: StoredVersion, *, status_code: int, base_url: str, prefer: str | None, message: str
) -> Response:
    """Answer a create or update with the body the client asked for in `Prefer`."""
    headers = version_headers(version, base_url=base_url, location=True)
    preference = return_preference(prefer)
    if preference == "minimal":
        return Response(status_code=status_code, headers=headers)
    if preference == "OperationOutcome":
        outcome = operation_outcome([Issue(message, severity="information")], default_code="informational")
        return json_response(outcome, status_code=status_code, headers=headers)
    assert version.content is not None
    return json_response(version.content, status_code=status_code, headers=headers)
