"""SMART discovery: https://hl7.org/fhir/smart-app-launch/conformance.html"""

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from service.fhir.capability import SMART_CAPABILITIES, SUPPORTED_SCOPES

router = APIRouter()


@router.get(
    "/.well-known/smart-configuration",
    tags=["System"],
    summary="SMART on FHIR configuration: token formats, scopes and capabilities",
    operation_id="smart_configuration",
    response_class=JSONResponse,
)
async def smart_configuration() -> dict[str, Any]:
    return {
        "capabilities": list(SMART_CAPABILITIES),
        "scopes_supported": list(SUPPORTED_SCOPES),
        "code_challenge_methods_supported": ["S256"],
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
    }
