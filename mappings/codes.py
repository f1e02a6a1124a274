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
