"""A small valid instance of every served type, for the API documentation and the contract tests.

The clinical examples refer to `Patient/example`, which the Patient example creates when it is PUT to that
id (`PUT /fhir/Patient/example`): tried in that order in the API docs, every example is accepted.
"""

from __future__ import annotations

from typing import Any

EXAMPLES: dict[str, dict[str, Any]] = {
    "Patient": {
        "resourceType": "Patient",
        "id": "example",
        "identifier": [{"system": "urn:example:mrn", "value": "12345"}],
        "name": [{"family": "Rivera", "given": ["Sam"]}],
        "gender": "male",
        "birthDate": "1992-04-17",
    },
    "Practitioner": {
        "resourceType": "Practitioner",
        "name": [{"family": "Okafor", "given": ["Ada"], "suffix": ["PhD"]}],
        "qualification": [{"code": {"text": "PhD, clinical psychology"}}],
    },
    "PractitionerRole": {
        "resourceType": "PractitionerRole",
        "active": True,
        "code": [{"coding": [{"system": "http://snomed.info/sct", "code": "224588003"}]}],
    },
    "RelatedPerson": {
        "resourceType": "RelatedPerson",
        "patient": {"reference": "Patient/example"},
        "relationship": [
            {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": "FTH"}]}
        ],
    },
    "CareTeam": {"resourceType": "CareTeam", "status": "active", "name": "IPT care team"},
    "Condition": {
        "resourceType": "Condition",
        "subject": {"reference": "Patient/example"},
        "code": {
            "coding": [
                {
                    "system": "http://hl7.org/fhir/sid/icd-10-cm",
                    "code": "F43.21",
                    "display": "Adjustment disorder with depressed mood",
                }
            ]
        },
    },
    "Goal": {
        "resourceType": "Goal",
        "lifecycleStatus": "active",
        "description": {"text": "Reduce loneliness and depressive symptoms"},
        "subject": {"reference": "Patient/example"},
    },
    "CarePlan": {
        "resourceType": "CarePlan",
        "status": "draft",
        "intent": "plan",
        "title": "IPT treatment plan",
        "subject": {"reference": "Patient/example"},
    },
    "Questionnaire": {
        "resourceType": "Questionnaire",
        "url": "http://example.org/fhir/ipt/Questionnaire/example",
        "version": "1.0.0",
        "status": "draft",
        "item": [{"linkId": "mood", "text": "How was your mood this week?", "type": "text"}],
    },
    "QuestionnaireResponse": {
        "resourceType": "QuestionnaireResponse",
        "status": "in-progress",
        "item": [{"linkId": "mood", "answer": [{"valueString": "Better than last week"}]}],
    },
    "Observation": {
        "resourceType": "Observation",
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "survey",
                    }
                ]
            }
        ],
        "code": {
            "coding": [
                {
                    "system": "http://loinc.org",
                    "code": "44261-6",
                    "display": "Patient Health Questionnaire 9 item (PHQ-9) total score [Reported]",
                }
            ]
        },
        "subject": {"reference": "Patient/example"},
        "effectiveDateTime": "2024-05-31T10:00:00Z",
        "valueInteger": 11,
    },
    "PlanDefinition": {"resourceType": "PlanDefinition", "status": "draft", "title": "IPT for depression"},
    "ActivityDefinition": {"resourceType": "ActivityDefinition", "status": "draft", "title": "IPT session"},
    "CodeSystem": {
        "resourceType": "CodeSystem",
        "url": "http://example.org/fhir/ipt/CodeSystem/example",
        "status": "draft",
        "content": "complete",
        "concept": [{"code": "a", "display": "A"}],
    },
    "ValueSet": {
        "resourceType": "ValueSet",
        "url": "http://example.org/fhir/ipt/ValueSet/example",
        "status": "draft",
    },
}
