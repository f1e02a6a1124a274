"""The search part of the CapabilityStatement: parameters, includes and revincludes per type.

https://hl7.org/fhir/R4/capabilitystatement-definitions.html#CapabilityStatement.rest.resource.searchParam
Derived from the same definitions that parse and index searches (`service.fhir.search_parameters`), so the
statement lists exactly what a search accepts.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from service.fhir.registry import RESOURCE_DEFINITIONS
from service.fhir.search_parameters import COMMON_BASE, parameters_for


def _search_param(code: str, resource_type: str) -> dict[str, Any]:
    parameter = parameters_for(resource_type)[code]
    return {"name": code, "definition": parameter.url, "type": parameter.type}


@cache
def resource_search(resource_type: str) -> dict[str, Any]:
    """`searchInclude`, `searchRevInclude` and `searchParam` of one served type."""
    parameters = parameters_for(resource_type)
    includes = [f"{resource_type}:{code}" for code, p in parameters.items() if p.type == "reference"]
    revincludes = [
        f"{spec.name}:{code}"
        for spec in RESOURCE_DEFINITIONS
        for code, p in parameters_for(spec.name).items()
        if p.type == "reference" and resource_type in p.targets
    ]
    return {
        "searchInclude": [*includes, "*"],
        "searchRevInclude": [*revincludes, "*"],
        "searchParam": [_search_param(code, resource_type) for code in parameters],
    }


@cache
def system_search_params() -> list[dict[str, Any]]:
    """The parameters a search across types (`GET [base]?_type=`) takes: those every type has."""
    any_type = RESOURCE_DEFINITIONS[0].name
    return [
        _search_param(code, any_type)
        for code, parameter in parameters_for(any_type).items()
        if COMMON_BASE in parameter.bases
    ]
