"""The IPT-native API: treatment plans in the shape clinicians write them, stored as FHIR."""

from fastapi import APIRouter

router = APIRouter(prefix="/ipt")
