"""Validation of resources against the definitions they claim to follow.

`validate_response` checks a QuestionnaireResponse against its Questionnaire
(https://hl7.org/fhir/R4/questionnaireresponse.html#link); `check_status_transition` guards its status
lifecycle. Both are pure functions that return `Issue`s; the caller decides whether to raise.
"""

from __future__ import annotations

from service.fhir.validation._types import JSON, Codes, ValueSetLookup
from service.fhir.validation.questionnaire_response import (
    check_answer,
    check_status_transition,
    item_label,
    validate_response,
)

__all__ = [
    "JSON",
    "Codes",
    "ValueSetLookup",
    "check_answer",
    "check_status_transition",
    "item_label",
    "validate_response",
]
