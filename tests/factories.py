"""Builders of test resources: small valid instances, varied through keyword arguments."""

from typing import Any


def patient(*, family: str = "Rivera", given: str = "Sam", **extra: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", "name": [{"family": family, "given": [given]}], **extra}


def practitioner(*, family: str = "Okafor", **extra: Any) -> dict[str, Any]:
    return {"resourceType": "Practitioner", "name": [{"family": family}], **extra}


def questionnaire_response(*, status: str = "in-progress", **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "QuestionnaireResponse",
        "status": status,
        "item": [{"linkId": "mood", "answer": [{"valueString": "better"}]}],
        **extra,
    }


def care_plan(
    *, subject: str = "Patient/p1", status: str = "draft", intent: str = "plan", **extra: Any
) -> dict[str, Any]:
    return {
        "resourceType": "CarePlan",
        "status": status,
        "intent": intent,
        "subject": {"reference": subject},
        **extra,
    }


FHIR_JSON = {"Content-Type": "application/fhir+json"}
