"""Canonical URLs and code systems of the IPT content.

`http://example.org/fhir/ipt` is a placeholder base: a deployment that publishes this content to real EHRs
must replace it (one constant) and bump every content version.
"""

from __future__ import annotations

from typing import Final

IPT_BASE: Final = "http://example.org/fhir/ipt"

# Project CodeSystems (each with an all-codes ValueSet at `{IPT_BASE}/ValueSet/<id>`).
PROBLEM_AREA_SYSTEM: Final = f"{IPT_BASE}/CodeSystem/ipt-problem-area"
PHASE_SYSTEM: Final = f"{IPT_BASE}/CodeSystem/ipt-phase"
TECHNIQUE_SYSTEM: Final = f"{IPT_BASE}/CodeSystem/ipt-technique"
WORKSHEET_SYSTEM: Final = f"{IPT_BASE}/CodeSystem/ipt-worksheet"
CARE_TEAM_ROLE_SYSTEM: Final = f"{IPT_BASE}/CodeSystem/ipt-care-team-role"

QUESTIONNAIRE_BASE: Final = f"{IPT_BASE}/Questionnaire"
PLAN_DEFINITION_BASE: Final = f"{IPT_BASE}/PlanDefinition"
ACTIVITY_DEFINITION_BASE: Final = f"{IPT_BASE}/ActivityDefinition"
EXTENSION_BASE: Final = f"{IPT_BASE}/StructureDefinition"

PROBLEM_AREAS: Final = ("grief", "role-dispute", "role-transition", "interpersonal-deficits")
PHASES: Final = ("initial", "intermediate", "termination")

# External terminologies.
SNOMED: Final = "http://snomed.info/sct"
LOINC: Final = "http://loinc.org"
ICD10CM: Final = "http://hl7.org/fhir/sid/icd-10-cm"
ICD9CM: Final = "http://hl7.org/fhir/sid/icd-9-cm"
V3_ROLE_CODE: Final = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
V3_CONFIDENTIALITY: Final = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
V3_ACT_CODE: Final = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
USAGE_CONTEXT_TYPE: Final = "http://terminology.hl7.org/CodeSystem/usage-context-type"

SNOMED_IPT: Final = "443730003"  # Interpersonal psychotherapy (regime/therapy)
SNOMED_MENTAL_HEALTH_CARE_PLAN: Final = "718347000"
LOINC_PHQ9_PANEL: Final = "44249-1"
LOINC_PHQ9_TOTAL: Final = "44261-6"

# Content publishing (Questionnaire, CodeSystem, ValueSet, ActivityDefinition, PlanDefinition).
CODE_SYSTEM_BASE: Final = f"{IPT_BASE}/CodeSystem"
VALUE_SET_BASE: Final = f"{IPT_BASE}/ValueSet"
CONTENT_PUBLISHER: Final = "ipt-fhir project"
EXT_SESSION_RANGE: Final = f"{EXTENSION_BASE}/ipt-session-range"

# Core and SDC extensions that help a form renderer.
EXT_ITEM_CONTROL: Final = "http://hl7.org/fhir/StructureDefinition/questionnaire-itemControl"
ITEM_CONTROL_SYSTEM: Final = "http://hl7.org/fhir/questionnaire-item-control"
EXT_ENTRY_FORMAT: Final = "http://hl7.org/fhir/StructureDefinition/entryFormat"
EXT_MIN_VALUE: Final = "http://hl7.org/fhir/StructureDefinition/minValue"
EXT_MAX_VALUE: Final = "http://hl7.org/fhir/StructureDefinition/maxValue"
EXT_MIN_OCCURS: Final = "http://hl7.org/fhir/StructureDefinition/questionnaire-minOccurs"
EXT_MAX_OCCURS: Final = "http://hl7.org/fhir/StructureDefinition/questionnaire-maxOccurs"
EXT_ORDINAL_VALUE: Final = "http://hl7.org/fhir/StructureDefinition/ordinalValue"
EXT_CALCULATED_EXPRESSION: Final = (
    "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-calculatedExpression"
)

# HL7 terminology used by the content.
DESIGNATION_SYNONYM: Final = "900000000000013009"  # SNOMED CT designation use "Synonym"
PLAN_DEFINITION_TYPE: Final = "http://terminology.hl7.org/CodeSystem/plan-definition-type"
GOAL_CATEGORY: Final = "http://terminology.hl7.org/CodeSystem/goal-category"
GOAL_PRIORITY: Final = "http://terminology.hl7.org/CodeSystem/goal-priority"
RESOURCE_TYPES: Final = "http://hl7.org/fhir/resource-types"
LOINC_PHQ9_ANSWER_LIST: Final = "LL358-3"
