"""The CapabilityStatement, built from the same registry that builds the routes.

https://hl7.org/fhir/R4/capabilitystatement.html. It claims only what is served: a type, interaction or
search parameter appears here exactly when a route answers it.
"""

from __future__ import annotations

from typing import Any

from mappings.r4 import FHIR_VERSION
from service.fhir.apply import APPLY_OPERATION
from service.fhir.operation_definitions import operations_for
from service.fhir.registry import RESOURCE_DEFINITIONS
from service.fhir.search_capability import resource_search, system_search_params

SOFTWARE_NAME = "ipt-fhir"

SMART_CAPABILITIES = (
    "client-confidential-asymmetric",
    "permission-v1",
    "permission-v2",
    "permission-patient",
    "permission-user",
    "context-ehr-patient",
)
SUPPORTED_SCOPES = (
    "patient/*.cruds",
    "user/*.cruds",
    "system/*.cruds",
    "patient/*.read",
    "user/*.read",
    "system/*.read",
    "patient/*.write",
    "user/*.write",
    "system/*.write",
)
SECURITY = {
    "service": [
        {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                    "code": "SMART-on-FHIR",
                }
            ]
        }
    ],
    "description": "Every request except the CapabilityStatement needs `Authorization: Bearer <JWT>` "
    "whose SMART scopes (v1 or v2; patient/, user/ or system/) allow it; a patient/ scope confines the "
    "request to the token's `patient`. See /.well-known/smart-configuration.",
}


def capability_statement(*, base_url: str, software_version: str, date: str, cors: bool) -> dict[str, Any]:
    """`cors`: whether browsers of other origins may call the API, i.e. whether CORS origins are configured
    (a preflight is answered only then)."""
    resources = []
    for spec in RESOURCE_DEFINITIONS:
        resources.append(
            {
                "type": spec.name,
                "profile": f"http://hl7.org/fhir/StructureDefinition/{spec.name}",
                "documentation": spec.description,
                "interaction": [{"code": code} for code in spec.interactions]
                + [{"code": "patch"}, {"code": "search-type"}],
                "versioning": "versioned-update",
                "readHistory": True,
                "updateCreate": True,
                "conditionalCreate": True,
                "conditionalRead": "not-supported",
                "conditionalUpdate": True,
                "conditionalDelete": "single",
                **resource_search(spec.name),
                "operation": [
                    {
                        "name": operation.name,
                        "definition": operation.definition,
                        "documentation": operation.documentation,
                    }
                    for operation in operations_for(spec.name)
                ]
                + ([dict(APPLY_OPERATION)] if spec.name == "PlanDefinition" else []),
            }
        )
    resources.append(
        {
            "type": "AuditEvent",
            "profile": "http://hl7.org/fhir/StructureDefinition/AuditEvent",
            "documentation": "The audit trail, written by the server alone: read and searched with a "
            "user/ or system/ scope that names AuditEvent (system/AuditEvent.rs).",
            "interaction": [{"code": "read"}, {"code": "search-type"}],
            "versioning": "no-version",
            "readHistory": False,
            "updateCreate": False,
            **resource_search("AuditEvent"),
        }
    )
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": date,
        "publisher": "ipt-fhir",
        "kind": "instance",
        "software": {"name": SOFTWARE_NAME, "version": software_version},
        "implementation": {"description": "IPT FHIR service", "url": base_url},
        "fhirVersion": FHIR_VERSION,
        "format": ["json", "application/fhir+json"],
        "rest": [
            {
                "mode": "server",
                "documentation": "FHIR R4 REST API for Interpersonal Psychotherapy records and content.",
                "security": {"cors": cors, **SECURITY},
                "resource": resources,
                "interaction": [
                    {"code": "transaction"},
                    {"code": "batch"},
                    {"code": "search-system"},
                    {"code": "history-system"},
                ],
                "searchParam": system_search_params(),
            }
        ],
    }
