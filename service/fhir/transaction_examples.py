"""Example bodies for the API documentation of Bundles and PATCH, and for `docs/transactions.md`.

`TREATMENT_PLAN_TRANSACTION` is what an EHR sends to file a whole IPT treatment plan at once
(https://hl7.org/fhir/R4/http.html#transaction): a new Patient, the therapist as a conditional create (so a
practitioner already on file is reused rather than duplicated), the Condition the plan addresses, two
Goals, the CareTeam and the CarePlan, all linked by `urn:uuid:` references that the server rewrites to the
ids it assigns.
"""

from __future__ import annotations

from typing import Any

_PATIENT = "urn:uuid:4b1f2b4e-6f0e-4c6a-9a53-1f0f5c0b7a01"
_THERAPIST = "urn:uuid:4b1f2b4e-6f0e-4c6a-9a53-1f0f5c0b7a02"
_CONDITION = "urn:uuid:4b1f2b4e-6f0e-4c6a-9a53-1f0f5c0b7a03"
_GOAL_MOOD = "urn:uuid:4b1f2b4e-6f0e-4c6a-9a53-1f0f5c0b7a04"
_GOAL_SUPPORT = "urn:uuid:4b1f2b4e-6f0e-4c6a-9a53-1f0f5c0b7a05"
_CARE_TEAM = "urn:uuid:4b1f2b4e-6f0e-4c6a-9a53-1f0f5c0b7a06"
_CARE_PLAN = "urn:uuid:4b1f2b4e-6f0e-4c6a-9a53-1f0f5c0b7a07"

_NPI = "http://hl7.org/fhir/sid/us-npi"


def _post(full_url: str, resource: dict[str, Any], **request: str) -> dict[str, Any]:
    return {
        "fullUrl": full_url,
        "resource": resource,
        "request": {"method": "POST", "url": resource["resourceType"], **request},
    }


def _goal(text: str) -> dict[str, Any]:
    return {
        "resourceType": "Goal",
        "lifecycleStatus": "active",
        "description": {"text": text},
        "subject": {"reference": _PATIENT},
    }


TREATMENT_PLAN_TRANSACTION: dict[str, Any] = {
    "resourceType": "Bundle",
    "type": "transaction",
    "entry": [
        _post(
            _PATIENT,
            {
                "resourceType": "Patient",
                "identifier": [{"system": "http://hospital.example/mrn", "value": "MRN-20931"}],
                "name": [{"family": "Rivera", "given": ["Sam"]}],
                "gender": "male",
                "birthDate": "1992-04-17",
            },
            ifNoneExist="identifier=http://hospital.example/mrn|MRN-20931",
        ),
        _post(
            _THERAPIST,
            {
                "resourceType": "Practitioner",
                "identifier": [{"system": _NPI, "value": "1234567893"}],
                "name": [{"family": "Okafor", "given": ["Ada"], "suffix": ["PhD"]}],
            },
            ifNoneExist=f"identifier={_NPI}|1234567893",
        ),
        _post(
            _CONDITION,
            {
                "resourceType": "Condition",
                "clinicalStatus": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                            "code": "active",
                        }
                    ]
                },
                "code": {
                    "coding": [
                        {
                            "system": "http://hl7.org/fhir/sid/icd-10-cm",
                            "code": "F32.1",
                            "display": "Major depressive disorder, single episode, moderate",
                        }
                    ]
                },
                "subject": {"reference": _PATIENT},
            },
        ),
        _post(_GOAL_MOOD, _goal("PHQ-9 below 10 by the end of treatment")),
        _post(_GOAL_SUPPORT, _goal("Re-establish weekly contact with two friends")),
        _post(
            _CARE_TEAM,
            {
                "resourceType": "CareTeam",
                "status": "active",
                "name": "IPT care team",
                "subject": {"reference": _PATIENT},
                "participant": [{"member": {"reference": _THERAPIST}}],
            },
        ),
        _post(
            _CARE_PLAN,
            {
                "resourceType": "CarePlan",
                "status": "active",
                "intent": "plan",
                "title": "IPT for depression: 16 weekly sessions",
                "subject": {"reference": _PATIENT},
                "author": {"reference": _THERAPIST},
                "careTeam": [{"reference": _CARE_TEAM}],
                "addresses": [{"reference": _CONDITION}],
                "goal": [{"reference": _GOAL_MOOD}, {"reference": _GOAL_SUPPORT}],
            },
        ),
    ],
}

BATCH_EXAMPLE: dict[str, Any] = {
    "resourceType": "Bundle",
    "type": "batch",
    "entry": [
        {
            "resource": {"resourceType": "Patient", "name": [{"family": "Nguyen", "given": ["Lan"]}]},
            "request": {"method": "POST", "url": "Patient"},
        },
        {"request": {"method": "GET", "url": "Patient/does-not-exist"}},
    ],
}

JSON_PATCH_EXAMPLE: list[dict[str, Any]] = [
    {"op": "test", "path": "/status", "value": "draft"},
    {"op": "replace", "path": "/status", "value": "active"},
    {"op": "add", "path": "/note/-", "value": {"text": "Agreed with the client in session 2"}},
]

FHIRPATH_PATCH_EXAMPLE: dict[str, Any] = {
    "resourceType": "Parameters",
    "parameter": [
        {
            "name": "operation",
            "part": [
                {"name": "type", "valueCode": "replace"},
                {"name": "path", "valueString": "CarePlan.status"},
                {"name": "value", "valueCode": "active"},
            ],
        },
        {
            "name": "operation",
            "part": [
                {"name": "type", "valueCode": "add"},
                {"name": "path", "valueString": "CarePlan"},
                {"name": "name", "valueString": "note"},
                {"name": "value", "valueAnnotation": {"text": "Agreed with the client in session 2"}},
            ],
        },
    ],
}
