"""IPT <-> FHIR, as a pure library: give it data, get data; no database, no HTTP.

- `TreatmentPlan` is the IPT treatment plan as clinicians write it; `to_fhir_transaction` turns it into a
  FHIR transaction Bundle and `from_fhir` / `from_fhir_bundle` turn stored FHIR back into the same plan.
- `load_content` gives the IPT content (worksheet Questionnaires, CodeSystems, ValueSets, ActivityDefinitions
  and the PlanDefinition), built from the reviewable YAML sources in `mappings/content/`.
"""

from mappings.careplan import (
    MappingError,
    from_fhir,
    from_fhir_bundle,
    resolved_from_bundle,
    to_fhir_transaction,
)
from mappings.content import load_content, render_worksheets_markdown, worksheet_ids
from mappings.domain import TreatmentPlan

__all__ = [
    "MappingError",
    "TreatmentPlan",
    "from_fhir",
    "from_fhir_bundle",
    "load_content",
    "render_worksheets_markdown",
    "resolved_from_bundle",
    "to_fhir_transaction",
    "worksheet_ids",
]
