"""Security labels on psychotherapy records (https://hl7.org/fhir/R4/security-labels.html).

Every clinical resource is stored at least `R` (restricted) confidentiality and with the `PSY` (psychiatry
disorder information) sensitivity label. A writer may set a stricter confidentiality (`V`, very restricted)
and keeps it; a laxer one (`U`, `L`, `M`, `N`) is raised to `R`.
"""

from __future__ import annotations

from typing import Any

from mappings.codes import V3_ACT_CODE, V3_CONFIDENTIALITY
from service.fhir.registry import RESOURCES

# v3 Confidentiality codes from the least to the most restrictive.
_CONFIDENTIALITY_ORDER = ("U", "L", "M", "N", "R", "V")
_MINIMUM = "R"
RESTRICTED = {"system": V3_CONFIDENTIALITY, "code": "R", "display": "restricted"}
PSYCHIATRY = {"system": V3_ACT_CODE, "code": "PSY", "display": "psychiatry disorder information sensitivity"}


def labelled(resource_type: str, content: dict[str, Any]) -> dict[str, Any]:
    """`content` with the default labels of its type added (a copy; unchanged content is returned as is)."""
    spec = RESOURCES.get(resource_type)
    if spec is None or spec.kind != "clinical":
        return content
    meta = dict(content.get("meta") or {})
    labels = [label for label in meta.get("security") or [] if isinstance(label, dict)]
    confidentiality = [label for label in labels if label.get("system") == V3_CONFIDENTIALITY]
    strictest = max(
        (
            _CONFIDENTIALITY_ORDER.index(c["code"])
            for c in confidentiality
            if c.get("code") in _CONFIDENTIALITY_ORDER
        ),
        default=-1,
    )
    changed = False
    if strictest < _CONFIDENTIALITY_ORDER.index(_MINIMUM):
        labels = [label for label in labels if label.get("system") != V3_CONFIDENTIALITY] + [RESTRICTED]
        changed = True
    if not any(label.get("system") == V3_ACT_CODE and label.get("code") == "PSY" for label in labels):
        labels.append(PSYCHIATRY)
        changed = True
    if not changed:
        return content
    meta["security"] = labels
    return {**content, "meta": meta}
