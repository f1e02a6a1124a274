"""System-level interactions on `[base]`: batch and transaction Bundles (https://hl7.org/fhir/R4/http.html#transaction)."""

from fastapi import APIRouter

router = APIRouter()
