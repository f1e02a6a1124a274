"""Extension URLs and code tables of the treatment-plan mapping.

`mappings/codes.py` holds the project's shared canonical URLs; this module adds what only the treatment plan
mapping needs: the project extensions (for document fields FHIR R4 has no element for), the core extensions
it reuses, and the small code tables that translate document enums to codings and back. Every table here is
a bijection, because `from_fhir` must turn each coding back into exactly the document value it came from.

Project extensions (all under `{IPT_BASE}/StructureDefinition/`, documented in `docs/mapping.md`):

| name | context | value |
|---|---|---|
| `ipt-activity-level` | `CarePlan.activity` | `valueCode`: course, phase, session, intervention, monitoring |
| `ipt-phase` | `CarePlan.activity` | `valueCoding` from the `ipt-phase` CodeSystem |
| `ipt-session-range` | `CarePlan.activity` | `valueRange`: first and last session number of the block |
| `ipt-focus-rank` | `CarePlan.category` | `valueCode`: `primary` or `secondary` problem area |
| `ipt-note-type` | `CarePlan.note` | `valueCode`: `prognosis` (other notes carry no type) |
| `ipt-relapse-prevention` | `CarePlan` | complex, see `RELAPSE_*` below |
"""

from __future__ import annotations

from typing import Final

from mappings.codes import (
    CARE_TEAM_ROLE_SYSTEM,
    EXTENSION_BASE,
    LOINC,
    PLAN_DEFINITION_BASE,
    SNOMED,
    V3_ACT_CODE,
    V3_CONFIDENTIALITY,
)

# Project extensions.
EXT_ACTIVITY_LEVEL: Final = f"{EXTENSION_BASE}/ipt-activity-level"
EXT_PHASE: Final = f"{EXTENSION_BASE}/ipt-phase"
EXT_SESSION_RANGE: Final = f"{EXTENSION_BASE}/ipt-session-range"
EXT_FOCUS_RANK: Final = f"{EXTENSION_BASE}/ipt-focus-rank"
EXT_NOTE_TYPE: Final = f"{EXTENSION_BASE}/ipt-note-type"
EXT_RELAPSE_PREVENTION: Final = f"{EXTENSION_BASE}/ipt-relapse-prevention"

# Sub-extension names (relative URLs, as complex extensions use them) of `ipt-relapse-prevention`.
RELAPSE_WARNING_SIGN: Final = "warningSign"
RELAPSE_SUPPORT: Final = "support"
RELAPSE_SUPPORT_NAME: Final = "name"
RELAPSE_SUPPORT_RELATIONSHIP: Final = "relationship"
RELAPSE_SUPPORT_CONTACT: Final = "contact"
RELAPSE_STRATEGY: Final = "strategy"
RELAPSE_SKILL: Final = "skill"
RELAPSE_SKILL_NAME: Final = "name"
RELAPSE_SKILL_WHEN: Final = "when"
RELAPSE_LONG_TERM_GOAL: Final = "longTermGoal"
RELAPSE_IF_SYMPTOMS_RETURN: Final = "ifSymptomsReturn"
RELAPSE_REVIEW_DATE: Final = "reviewDate"

PROJECT_EXTENSIONS: Final = (
    EXT_ACTIVITY_LEVEL,
    EXT_PHASE,
    EXT_SESSION_RANGE,
    EXT_FOCUS_RANK,
    EXT_NOTE_TYPE,
    EXT_RELAPSE_PREVENTION,
)

# Core (hl7.org) extensions the mapping reuses.
EXT_ACTIVITY_TITLE: Final = "http://hl7.org/fhir/StructureDefinition/careplan-activity-title"
EXT_GOAL_RELATIONSHIP: Final = "http://hl7.org/fhir/StructureDefinition/goal-relationship"
EXT_GOAL_ACCEPTANCE: Final = "http://hl7.org/fhir/StructureDefinition/goal-acceptance"

# The IPT protocol every plan instantiates.
IPT_PLAN_DEFINITION: Final = f"{PLAN_DEFINITION_BASE}/ipt-depression"

# Terminology systems not in codes.py.
GOAL_RELATIONSHIP_TYPE: Final = "http://terminology.hl7.org/CodeSystem/goal-relationship-type"
GOAL_ACHIEVEMENT: Final = "http://terminology.hl7.org/CodeSystem/goal-achievement"
GOAL_PRIORITY: Final = "http://terminology.hl7.org/CodeSystem/goal-priority"
GOAL_CATEGORY: Final = "http://terminology.hl7.org/CodeSystem/goal-category"
CONDITION_CLINICAL: Final = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VER_STATUS: Final = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
CONDITION_CATEGORY: Final = "http://terminology.hl7.org/CodeSystem/condition-category"
PROJECT_CARE_TEAM_ROLE_SUPERVISOR: Final = "clinical-supervisor"

# Fixed codings.
SNOMED_IPT_DISPLAY: Final = "Interpersonal psychotherapy"
MENTAL_HEALTH_CARE_PLAN_DISPLAY: Final = "Mental health care plan"
CARE_TEAM_CATEGORY: Final = {"system": LOINC, "code": "LA27978-8", "display": "Condition-focused care team"}
GOAL_CATEGORY_BEHAVIORAL: Final = {"system": GOAL_CATEGORY, "code": "behavioral", "display": "Behavioral"}
MILESTONE: Final = {"system": GOAL_RELATIONSHIP_TYPE, "code": "milestone", "display": "Milestone"}

# Psychotherapy content is restricted (R) and psychiatric-disorder sensitive (PSY): FHIR-MAPPING section 10.
SECURITY_LABELS: Final = (
    {"system": V3_CONFIDENTIALITY, "code": "R", "display": "restricted"},
    {"system": V3_ACT_CODE, "code": "PSY", "display": "psychiatry disorder information sensitivity"},
)

PROBLEM_AREA_DISPLAY: Final = {
    "grief": "Grief",
    "role-dispute": "Role dispute",
    "role-transition": "Role transition",
    "interpersonal-deficits": "Interpersonal deficits",
}

PHASE_DISPLAY: Final = {
    "initial": "Initial phase",
    "intermediate": "Intermediate phase",
    "termination": "Termination phase",
}

# The ipt-technique CodeSystem (FHIR-MAPPING section 9), code -> display.
TECHNIQUE_DISPLAY: Final = {
    "interpersonal-inventory": "Interpersonal inventory",
    "communication-analysis": "Communication analysis",
    "role-play": "Role-play",
    "imagery-rescripting": "Imagery rescripting",
    "grief-analysis": "Grief analysis",
    "guided-imagery": "Guided imagery",
    "social-skills-training": "Social skills training",
    "feeling-statements": "Feeling statements",
    "decision-analysis": "Decision analysis",
    "clarification": "Clarification",
    "encouragement-of-affect": "Encouragement of affect",
    "support-network": "Support network building",
    "psychoeducation": "Psychoeducation",
    "problem-solving": "Problem solving",
    "cognitive-restructuring": "Cognitive restructuring",
    "assertiveness-training": "Assertiveness training",
    "mindfulness": "Mindfulness and meditation",
    "dbt-skills": "DBT skills",
    "journaling": "Journaling",
    "role-exploration": "Role exploration",
    "attachment-exploration": "Attachment and relational-pattern exploration",
    "validation": "Validation of self and others",
    "goal-setting": "Goal setting",
    "relapse-prevention": "Relapse-prevention planning",
}

# Care-team role (document value) -> CareTeam.participant.role coding. SNOMED where a verified code exists
# (FHIR-MAPPING section 5); the supervisor has none, so it takes the project code.
CARE_TEAM_ROLE_CODING: Final = {
    "therapist": {"system": SNOMED, "code": "224588003", "display": "Psychotherapist"},
    "supervisor": {
        "system": CARE_TEAM_ROLE_SYSTEM,
        "code": PROJECT_CARE_TEAM_ROLE_SUPERVISOR,
        "display": "Clinical supervisor",
    },
    "psychiatrist": {"system": SNOMED, "code": "80584001", "display": "Psychiatrist"},
    "client": {"system": SNOMED, "code": "116154003", "display": "Patient"},
    "family-member": {"system": SNOMED, "code": "303071001", "display": "Person in the family"},
    "caregiver": {"system": SNOMED, "code": "133932002", "display": "Caregiver"},
    "friend": {"system": SNOMED, "code": "113163005", "display": "Friend"},
}

# RelatedPerson.relationship codes (v3-RoleCode) a support person may have, code -> display.
RELATIONSHIP_DISPLAY: Final = {
    "FAMMEMB": "family member",
    "FTH": "father",
    "MTH": "mother",
    "PRN": "parent",
    "SIB": "sibling",
    "CHILD": "child",
    "SPS": "spouse",
    "SIGOTHR": "significant other",
    "FRND": "unrelated friend",
    "GUARD": "guardian",
    "NOK": "next of kin",
    "ECON": "emergency contact",
}

GOAL_PRIORITY_DISPLAY: Final = {
    "high-priority": "High Priority",
    "medium-priority": "Medium Priority",
    "low-priority": "Low Priority",
}

GOAL_ACHIEVEMENT_DISPLAY: Final = {
    "in-progress": "In Progress",
    "improving": "Improving",
    "worsening": "Worsening",
    "no-change": "No Change",
    "achieved": "Achieved",
    "sustaining": "Sustaining",
    "not-achieved": "Not Achieved",
    "no-progress": "No Progress",
    "not-attainable": "Not Attainable",
}
