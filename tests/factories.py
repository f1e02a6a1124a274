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


def condition(*, subject: str = "Patient/p1", **extra: Any) -> dict[str, Any]:
    """An active, confirmed problem-list Condition (a depressive disorder unless `code` says otherwise)."""
    return {
        "resourceType": "Condition",
        "clinicalStatus": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}
            ]
        },
        "verificationStatus": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "confirmed"}
            ]
        },
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/condition-category",
                        "code": "problem-list-item",
                    }
                ]
            }
        ],
        "code": {
            "coding": [
                {"system": "http://snomed.info/sct", "code": "35489007", "display": "Depressive disorder"}
            ]
        },
        "subject": {"reference": subject},
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


# --- worksheets and responses for the QuestionnaireResponse tests ---------------------------------------

WORKSHEET_URL = "http://example.org/fhir/ipt/Questionnaire/mood-check"
WORKSHEET_SYSTEM = "http://example.org/fhir/ipt/CodeSystem/closeness"
WORKSHEET_VALUE_SET = "http://example.org/fhir/ipt/ValueSet/closeness"
MIN_VALUE = "http://hl7.org/fhir/StructureDefinition/minValue"
MAX_VALUE = "http://hl7.org/fhir/StructureDefinition/maxValue"


def worksheet(*, id: str = "mood-check-1", version: str = "1.0.0", **extra: Any) -> dict[str, Any]:
    """A small worksheet: a display, a required mood rating (0-10), a repeating group of people with a
    required name and a closeness coded from a ValueSet, and a text enabled only when the mood is above 5."""
    return {
        "resourceType": "Questionnaire",
        "id": id,
        "url": WORKSHEET_URL,
        "version": version,
        "status": "active",
        "subjectType": ["Patient"],
        "item": [
            {"linkId": "intro", "type": "display", "text": "Think about the last week."},
            {
                "linkId": "mood",
                "type": "integer",
                "text": "How was your mood (0-10)?",
                "required": True,
                "extension": [
                    {"url": MIN_VALUE, "valueInteger": 0},
                    {"url": MAX_VALUE, "valueInteger": 10},
                ],
            },
            {
                "linkId": "people",
                "type": "group",
                "text": "People you talked to",
                "repeats": True,
                "item": [
                    {"linkId": "people.name", "type": "string", "text": "Name", "required": True},
                    {
                        "linkId": "people.closeness",
                        "type": "choice",
                        "text": "How close are you?",
                        "answerValueSet": WORKSHEET_VALUE_SET,
                    },
                ],
            },
            {
                "linkId": "good",
                "type": "text",
                "text": "What went well?",
                "enableWhen": [{"question": "mood", "operator": ">", "answerInteger": 5}],
            },
        ],
        **extra,
    }


def closeness_code_system() -> dict[str, Any]:
    return {
        "resourceType": "CodeSystem",
        "id": "closeness",
        "url": WORKSHEET_SYSTEM,
        "version": "1.0.0",
        "status": "active",
        "content": "complete",
        "concept": [{"code": "close", "display": "Close"}, {"code": "distant", "display": "Distant"}],
    }


def closeness_value_set() -> dict[str, Any]:
    return {
        "resourceType": "ValueSet",
        "id": "closeness",
        "url": WORKSHEET_VALUE_SET,
        "version": "1.0.0",
        "status": "active",
        "compose": {"include": [{"system": WORKSHEET_SYSTEM}]},
    }


def worksheet_response(
    *, subject: str | None = "Patient/p1", status: str = "completed", mood: int = 7, **extra: Any
) -> dict[str, Any]:
    """A valid answer to `worksheet()` (version 1.0.0) for `subject`."""
    response: dict[str, Any] = {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": f"{WORKSHEET_URL}|1.0.0",
        "status": status,
        "authored": "2024-05-31T10:00:00Z",
        "item": [
            {"linkId": "mood", "answer": [{"valueInteger": mood}]},
            {
                "linkId": "people",
                "item": [
                    {"linkId": "people.name", "answer": [{"valueString": "Alex"}]},
                    {
                        "linkId": "people.closeness",
                        "answer": [{"valueCoding": {"system": WORKSHEET_SYSTEM, "code": "close"}}],
                    },
                ],
            },
        ],
        **extra,
    }
    if subject is not None:
        response["subject"] = {"reference": subject}
    return response


PHQ9_ANSWERS = {0: "LA6568-5", 1: "LA6569-3", 2: "LA6570-1", 3: "LA6571-9"}


def phq9_response(
    scores: tuple[int, ...] = (2, 2, 1, 1, 0, 0, 3, 1, 0),
    *,
    subject: str = "Patient/p1",
    status: str = "completed",
    **extra: Any,
) -> dict[str, Any]:
    """A PHQ-9 response choosing the option worth each score for items 1-9."""
    return {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": "http://example.org/fhir/ipt/Questionnaire/phq-9|1.0.0",
        "status": status,
        "subject": {"reference": subject},
        "authored": "2024-05-31T10:00:00Z",
        "item": [
            {
                "linkId": f"phq9-{n}",
                "answer": [{"valueCoding": {"system": "http://loinc.org", "code": PHQ9_ANSWERS[score]}}],
            }
            for n, score in enumerate(scores, start=1)
        ],
        **extra,
    }
