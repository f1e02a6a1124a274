"""The one door to the FHIR models.

`fhir.resources` defaults to R5 on its top-level import; the R4 family lives in its `R4B` subpackage (4.3.0),
which is identical to R4 4.0.1 for every type this project serves. Everything else imports the models from
here, so the FHIR release is chosen in exactly one place.
"""

from __future__ import annotations

import importlib
from functools import cache
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.fhirresourcemodel import FHIRResourceModel
from fhir.resources.R4B.operationoutcome import OperationOutcome

FHIR_VERSION = "4.0.1"

__all__ = [
    "FHIR_VERSION",
    "Bundle",
    "CapabilityStatement",
    "FHIRResourceModel",
    "OperationOutcome",
    "model_class",
]


@cache
def model_class(resource_type: str) -> type[FHIRResourceModel]:
    """Return the R4B model class for a resource type name such as `"CarePlan"`.

    Raises `KeyError` for a name that is not a FHIR resource type.
    """
    if not resource_type.isalpha() or not resource_type[:1].isupper():
        raise KeyError(resource_type)
    try:
        module = importlib.import_module(f"fhir.resources.R4B.{resource_type.lower()}")
    except ImportError as exc:
        raise KeyError(resource_type) from exc
    cls: Any = getattr(module, resource_type, None)
    if cls is None or not isinstance(cls, type) or not issubclass(cls, FHIRResourceModel):
        raise KeyError(resource_type)
    return cls
