"""`_summary` and `_elements`: return a subset of each resource.

https://hl7.org/fhir/R4/search.html#summary and #elements. A subset carries the `SUBSETTED` tag
(http://terminology.hl7.org/CodeSystem/v3-ObservationValue) so that nobody mistakes it for the whole
resource. This is the one place a search parses stored content, and only when a subset was asked for.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import orjson

from mappings.r4 import model_class

SUBSETTED = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "SUBSETTED",
    "display": "Resource encoded in summary mode",
}
_ALWAYS = frozenset({"resourceType", "id", "meta"})


@cache
def summary_elements(resource_type: str) -> frozenset[str]:
    """The top-level elements the R4 definition marks `isSummary` (their `_x` extension siblings too)."""
    names: set[str] = set(_ALWAYS)
    for name, field in model_class(resource_type).model_fields.items():
        extra = field.json_schema_extra
        if isinstance(extra, dict) and extra.get("summary_element_property"):
            alias = field.alias or name
            names.update({alias, f"_{alias}"})
    return frozenset(names)


def subset(content: bytes, *, summary: str | None, elements: tuple[str, ...]) -> bytes:
    """`content` reduced as `_summary` (`true`, `data`) or `_elements` ask; unchanged otherwise."""
    if summary in (None, "false", "count") and not elements:
        return content
    resource: dict[str, Any] = orjson.loads(content)
    resource_type = str(resource.get("resourceType"))
    if summary == "true":
        keep = summary_elements(resource_type)
        reduced = {k: v for k, v in resource.items() if k in keep}
    elif summary == "data":
        reduced = {k: v for k, v in resource.items() if k != "text"}
    else:
        wanted = _ALWAYS | set(elements) | {f"_{e}" for e in elements}
        reduced = {k: v for k, v in resource.items() if k in wanted}
    meta = dict(reduced.get("meta") or {})
    meta["tag"] = [*meta.get("tag", []), SUBSETTED]
    reduced["meta"] = meta
    return orjson.dumps(reduced)
