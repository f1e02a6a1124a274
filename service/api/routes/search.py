"""Search: https://hl7.org/fhir/R4/search.html (routes added with the search interaction)."""

from fastapi import APIRouter

router = APIRouter()
