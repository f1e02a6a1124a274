"""Literal references, read one way by everything that follows them.

https://hl7.org/fhir/R4/references.html#literal. A `Reference.reference` is one of:

- relative, to a resource of this server: `Type/id` or `Type/id/_history/vid`;
- absolute: `http(s)://base/Type/id[/_history/vid]` (a RESTful URL, whose type and id are read, and whose
  base says which server holds it), `urn:uuid:...`, `urn:oid:...` or any other URI (opaque);
- contained: `#id`, or `#` alone for the resource that contains it.

Types are `[A-Z][A-Za-z]+`, ids and version ids `[A-Za-z0-9\\-.]{1,64}`. Anything else is malformed: a
string without a URI scheme that is not `Type/id[/_history/vid]` (`Patient/A/Patient/B`, `Patient/`,
`Patient/a b`, `Patient?identifier=x`), a contained reference whose id is not an id, or any reference with
whitespace or a control character in it.

Compartments, referential integrity, search indexing and the treatment-plan mapping all read references
through `parse_reference`: were each to read them its own way, one reference could put a resource in one
patient's compartment and show another patient as the client of the plan. A malformed reference has no
type and no id, so nothing can derive a target from it.

    >>> parse_reference("Patient/p1/_history/2").key
    'Patient/p1'
    >>> parse_reference("Patient/A/Patient/B").kind
    'malformed'
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

__all__ = ["ID", "TYPE", "Reference", "ReferenceKind", "parse_reference", "reference_of"]

TYPE = r"[A-Z][A-Za-z]+"
ID = r"[A-Za-z0-9\-.]{1,64}"

ReferenceKind = Literal["relative", "absolute", "contained", "malformed"]

_TAIL = rf"(?P<type>{TYPE})/(?P<id>{ID})(?:/_history/(?P<version>{ID}))?"
_RELATIVE = re.compile(_TAIL)
# The base is a scheme, an authority and an optional path; a query or fragment cannot hold the base, so a
# URL such as `https://host/x?Patient/1` is not read as Patient/1.
_RESTFUL = re.compile(rf"(?P<base>https?://[^/?#]+(?:/[^?#]*)?)/{_TAIL}")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")
_CONTAINED = re.compile(rf"#(?:{ID})?")
_UNSAFE = re.compile(r"[\s\x00-\x1f\x7f]")

_RELATIVE_SHAPE = (
    "a reference without a scheme is Type/id or Type/id/_history/vid, "
    "with ids of 1-64 characters of A-Z, a-z, 0-9, '-' and '.'"
)


@dataclass(frozen=True, slots=True)
class Reference:
    """One literal reference, as `parse_reference` reads it.

    `resource_type`, `resource_id` and `version` are set for a relative reference and an absolute RESTful
    URL (whose `base` is the service base it names); `problem` says why a malformed one is malformed.
    """

    text: str
    kind: ReferenceKind
    resource_type: str | None = None
    resource_id: str | None = None
    version: str | None = None
    base: str | None = None
    problem: str | None = None

    @property
    def target(self) -> tuple[str, str] | None:
        """`(type, id)` of a resource of this server (a relative reference), whatever version it names."""
        if self.kind != "relative" or self.resource_type is None or self.resource_id is None:
            return None
        return self.resource_type, self.resource_id

    @property
    def key(self) -> str | None:
        """`Type/id` of a resource of this server (a relative reference), whatever version it names."""
        target = self.target
        return None if target is None else f"{target[0]}/{target[1]}"


# References repeat across writes (every response of a client names its Patient); the result is frozen.
@lru_cache(maxsize=4096)
def parse_reference(text: str) -> Reference:
    """Read a `Reference.reference` string; see the module's docstring for the grammar."""
    if not text:
        return _malformed(text, "a reference cannot be empty")
    if _UNSAFE.search(text):
        return _malformed(text, "a reference cannot hold whitespace or control characters")
    if text.startswith("#"):
        if _CONTAINED.fullmatch(text) is None:
            return _malformed(text, "a contained reference is '#' followed by the id of a contained resource")
        return Reference(text, "contained", resource_id=text[1:] or None)
    if _SCHEME.match(text) is not None:
        restful = _RESTFUL.fullmatch(text)
        if restful is None:
            if text.endswith(":"):
                return _malformed(text, "an absolute reference needs more than its scheme")
            return Reference(text, "absolute")
        return Reference(
            text,
            "absolute",
            restful["type"],
            restful["id"],
            restful["version"],
            base=restful["base"],
        )
    relative = _RELATIVE.fullmatch(text)
    if relative is None:
        return _malformed(text, _RELATIVE_SHAPE)
    return Reference(text, "relative", relative["type"], relative["id"], relative["version"])


def reference_of(value: Any) -> Reference | None:
    """The parsed `reference` of a Reference element, or None when it holds no literal reference."""
    text = value.get("reference") if isinstance(value, dict) else None
    return parse_reference(text) if isinstance(text, str) else None


def _malformed(text: str, problem: str) -> Reference:
    return Reference(text, "malformed", problem=problem)
