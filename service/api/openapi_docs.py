"""OpenAPI fragments for FHIR bodies.

Request bodies are read raw (so that errors come back as OperationOutcomes, not FastAPI's 422), which means
their schemas are declared here and attached with `openapi_extra`. Each resource schema is deliberately
shallow: it fixes `resourceType` and `id` and links to the R4 definition, which the server enforces in full.
"""

import json
from importlib import resources
from typing import Any

from mappings.domain import TreatmentPlan
from service.api.negotiation import FORMAT_PARAMETER
from service.fhir.examples import EXAMPLES
from service.fhir.registry import RESOURCE_DEFINITIONS

FHIR_JSON = "application/fhir+json"
_ERROR_TEXT = {
    400: "Malformed request or invalid resource",
    401: "No valid bearer token",
    403: "The token's scopes do not allow this",
    404: "Not found",
    406: "The requested format is not served (JSON only)",
    409: "Conflict with the current state",
    410: "The resource was deleted",
    412: "If-Match does not name the current version",
    413: "The body is too large",
    415: "The body is not JSON",
    422: "The resource breaks a business rule",
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def resource_request_body(name: str) -> dict[str, Any]:
    content: dict[str, Any] = {"schema": _ref(name)}
    if name in EXAMPLES:
        content["example"] = EXAMPLES[name]
    return {
        "requestBody": {
            "required": True,
            "content": {FHIR_JSON: content, "application/json": {"schema": _ref(name)}},
        }
    }


def resource_response(name: str, status: int, description: str) -> dict[int | str, Any]:
    return {status: {"description": description, "content": {FHIR_JSON: {"schema": _ref(name)}}}}


def bundle_response(bundle_type: str) -> dict[int | str, Any]:
    return {
        200: {
            "description": f"A Bundle of type {bundle_type}",
            "content": {FHIR_JSON: {"schema": _ref("Bundle")}},
        }
    }


def error_responses(*statuses: int) -> dict[int | str, Any]:
    return {
        status: {
            "description": _ERROR_TEXT[status],
            "content": {FHIR_JSON: {"schema": _ref("OperationOutcome")}},
        }
        for status in statuses
    }


_TREATMENT_PLAN = "#/components/schemas/TreatmentPlan"

TREATMENT_PLAN_LIST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "TreatmentPlanList",
    "required": ["patient", "total", "plans", "unreadable"],
    "properties": {
        "patient": {"type": "string", "description": "`Patient/<id>`"},
        "total": {"type": "integer", "minimum": 0},
        "plans": {"type": "array", "items": {"$ref": _TREATMENT_PLAN}},
        "unreadable": {
            "type": "array",
            "description": "The patient's CarePlans that are not IPT plans of the mapping, with the reason.",
            "items": {
                "type": "object",
                "required": ["id", "diagnostics"],
                "properties": {"id": {"type": "string"}, "diagnostics": {"type": "string"}},
            },
        },
    },
}


def document_request_body() -> dict[str, Any]:
    """The IPT treatment-plan document as a request body, with the sample plan as its example."""
    sample = resources.files("mappings").joinpath("samples/sample_plan.json").read_text(encoding="utf-8")
    content = {"schema": {"$ref": _TREATMENT_PLAN}, "example": json.loads(sample)}
    return {"requestBody": {"required": True, "content": {"application/json": content}}}


def document_response(status: int, description: str) -> dict[int | str, Any]:
    return {
        status: {
            "description": description,
            "content": {"application/json": {"schema": {"$ref": _TREATMENT_PLAN}}},
        }
    }


def treatment_plan_schemas() -> dict[str, Any]:
    """The JSON Schema of `TreatmentPlan`, its nested models as components prefixed `Ipt` (the FHIR
    resource schemas already use names such as `Goal` and `CareTeam`)."""
    schema = TreatmentPlan.model_json_schema(ref_template="#/components/schemas/Ipt{model}")
    nested = schema.pop("$defs", {})
    schemas = {f"Ipt{name}": definition for name, definition in nested.items()}
    schemas["TreatmentPlan"] = schema
    return schemas


def _resource_schema(name: str, description: str) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object",
        "title": name,
        "description": f"{description} The full definition: http://hl7.org/fhir/R4/{name.lower()}.html",
        "required": ["resourceType"],
        "properties": {
            "resourceType": {"type": "string", "enum": [name]},
            "id": {"type": "string", "pattern": r"^[A-Za-z0-9\-.]{1,64}$"},
            "meta": {"type": "object"},
        },
        "additionalProperties": True,
    }
    if name in EXAMPLES:
        schema["example"] = EXAMPLES[name]
    return schema


def component_schemas() -> dict[str, Any]:
    schemas = {spec.name: _resource_schema(spec.name, spec.description) for spec in RESOURCE_DEFINITIONS}
    schemas["AuditEvent"] = _resource_schema("AuditEvent", "A record of one access to clinical data.")
    schemas.update(treatment_plan_schemas())
    schemas["OperationOutcome"] = {
        "type": "object",
        "title": "OperationOutcome",
        "description": "Why a request failed, and where (`expression`).",
        "required": ["resourceType", "issue"],
        "properties": {
            "resourceType": {"type": "string", "enum": ["OperationOutcome"]},
            "issue": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "required": ["severity", "code"],
                    "properties": {
                        "severity": {"type": "string", "enum": ["fatal", "error", "warning", "information"]},
                        "code": {"type": "string"},
                        "diagnostics": {"type": "string"},
                        "expression": {"type": "array", "items": {"type": "string"}},
                    },
                },
            },
        },
    }
    schemas["Bundle"] = {
        "type": "object",
        "title": "Bundle",
        "description": "A page of results: http://hl7.org/fhir/R4/bundle.html",
        "required": ["resourceType", "type"],
        "properties": {
            "resourceType": {"type": "string", "enum": ["Bundle"]},
            "type": {"type": "string"},
            "total": {"type": "integer", "minimum": 0},
            "link": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["relation", "url"],
                    "properties": {"relation": {"type": "string"}, "url": {"type": "string"}},
                },
            },
            "entry": {"type": "array", "items": {"type": "object"}},
        },
    }
    schemas["CapabilityStatement"] = {
        "type": "object",
        "title": "CapabilityStatement",
        "required": ["resourceType", "fhirVersion", "rest"],
        "properties": {
            "resourceType": {"type": "string", "enum": ["CapabilityStatement"]},
            "fhirVersion": {"type": "string", "enum": ["4.0.1"]},
            "rest": {"type": "array"},
        },
    }
    return schemas


_PUBLIC_PATHS = ("/fhir/metadata", "/.well-known/smart-configuration", "/health")


def document_format(schema: dict[str, Any]) -> None:
    """Declare `_format` on every operation under /fhir and /ipt, whose format check
    (`service.api.negotiation.check_response_format`) runs before the route."""
    for path, operations in schema.get("paths", {}).items():
        if not path.startswith(("/fhir", "/ipt")):
            continue
        for operation in operations.values():
            parameters = operation.setdefault("parameters", [])
            position = sum(1 for parameter in parameters if parameter.get("in") == "path")
            parameters.insert(position, dict(FORMAT_PARAMETER))


def document_security(schema: dict[str, Any]) -> None:
    """Declare the bearer scheme, and the 401/403 answers of every guarded operation."""
    components = schema.setdefault("components", {})
    components.setdefault("securitySchemes", {})["bearer"] = {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "A SMART on FHIR access token; its scopes decide what the request may do.",
    }
    for path, operations in schema.get("paths", {}).items():
        guarded = path.startswith(("/fhir", "/ipt")) and path not in _PUBLIC_PATHS
        for operation in operations.values():
            if not guarded:
                operation["security"] = []
                continue
            operation["security"] = [{"bearer": []}]
            operation.setdefault("responses", {}).update(
                {str(status): body for status, body in error_responses(401, 403).items()}
            )
