"""Operations (`$validate`, `$populate`, `$extract`, …): https://hl7.org/fhir/R4/operations.html"""

from fastapi import APIRouter

router = APIRouter()
