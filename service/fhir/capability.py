"""The CapabilityStatement, built from the endpoint table that dispatches the requests.

https://hl7.org/fhir/R4/capabilitystatement.html. It claims only what is served: a type, interaction or
search parameter appears here exactly when a route answers it.
"""

from __future__ import annotations

from typing import Any

from mappings.r4 import FHIR_VERSION
from service.fhir.access import AUDIT_EVENT
from service.fhir.endpoints import ENDPOINTS, Endpoint, endpoints_of
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
    resources = [_resource_entry(spec.name, spec.description) for spec in RESOURCE_DEFINITIONS]
    resources.append(
        {
            "type": AUDIT_EVENT,
            "profile": f"http://hl7.org/fhir/StructureDefinition/{AUDIT_EVENT}",
            "documentation": "The audit trail, written by the server alone: read and searched with a "
            "user/ or system/ scope that names AuditEvent (system/AuditEvent.rs).",
            "interaction": [{"code": code} for code in _interactions(endpoints_of(AUDIT_EVENT))],
            "versioning": "no-version",
            "readHistory": False,
            "updateCreate": False,
            **resource_search(AUDIT_EVENT),
        }
    )
    system = [e for e in ENDPOINTS if e.api == "fhir" and e.resource_type is None and not e.public]
    system_interactions = _interactions(system)
    # One endpoint takes both kinds of Bundle.
    if "transaction" in system_interactions:
        system_interactions.insert(system_interactions.index("transaction") + 1, "batch")
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
                "interaction": [{"code": code} for code in system_interactions],
                "searchParam": system_search_params(),
            }
        ],
    }


def _interactions(endpoints: list[Endpoint]) -> list[str]:
    """The interaction codes the endpoints answer, each once, in the table's order."""
    return list(dict.fromkeys(e.interaction for e in endpoints if e.operation is None))


def _resource_entry(name: str, description: str) -> dict[str, Any]:
    endpoints = endpoints_of(name)
    interactions = _interactions(endpoints)
    conditional = {e.interaction for e in endpoints if e.conditional}
    operations = {e.operation.name: e.operation for e in endpoints if e.operation is not None}
    return {
        "type": name,
        "profile": f"http://hl7.org/fhir/StructureDefinition/{name}",
        "documentation": description,
        "interaction": [{"code": code} for code in interactions],
        "versioning": "versioned-update",
        "readHistory": "vread" in interactions,
        "updateCreate": "update" in interactions,
        "conditionalCreate": "create" in interactions,
        "conditionalRead": "not-supported",
        "conditionalUpdate": "update" in conditional,
        "conditionalDelete": "single" if "delete" in conditional else "not-supported",
        **resource_search(name),
        "operation": [
            {
                "name": operation.name,
                "definition": operation.definition,
                "documentation": operation.documentation,
            }
            for operation in operations.values()
        ],
    }
