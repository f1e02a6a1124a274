"""`PlanDefinition/$apply`: https://hl7.org/fhir/R4/plandefinition-operation-apply.html"""

from fastapi import APIRouter

router = APIRouter()
