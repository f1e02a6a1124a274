"""Small FHIR JSON helpers shared by the treatment-plan mapping modules.

The mapping works on plain JSON dicts (what is stored and sent), not on `fhir.resources` models: building
and reading dicts is an order of magnitude cheaper, and the tests validate the output with the R4B models.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias
from urllib.parse import quote
from uuid import UUID, uuid4

from mappings.domain import Coding, Concept, Identifier, PersonName
from mappings.extensions import SECURITY_LABELS
from mappings.references import parse_reference

Json: TypeAlias = dict[str, Any]

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")
_FHIR_ESCAPED = re.compile(r"([\\|,$])")


class MappingError(ValueError):
    """FHIR content that cannot be read back as a treatment plan; the message names the FHIR path."""


def coding(system: str, code: str, display: str | None = None) -> Json:
    result: Json = {"system": system, "code": code}
    if display is not None:
        result["display"] = display
    return result


def reference(target: str) -> Json:
    return {"reference": target}


def security_meta() -> Json:
    return {"security": [dict(label) for label in SECURITY_LABELS]}


def put_if(resource: Json, key: str, value: Any) -> None:
    """Set `key` only for a value FHIR can carry: no element may be null or an empty array."""
    if value is not None and value != [] and value != {}:
        resource[key] = value


def date_text(value: dt.date | None) -> str | None:
    return None if value is None else value.isoformat()


def parse_date(value: Any, where: str) -> dt.date | None:
    """A FHIR `date` or `dateTime` as a calendar date; time of day, if a server added one, is not kept."""
    if value is None:
        return None
    if not isinstance(value, str) or not _ISO_DATE.match(value):
        raise MappingError(f"{where}: expected a full date (YYYY-MM-DD), got {value!r}")
    try:
        return dt.date.fromisoformat(value[:10])
    except ValueError as exc:
        raise MappingError(f"{where}: {exc}") from exc


def whole_number(value: Any, where: str) -> int:
    """A FHIR integer or decimal that must hold a whole number (decimals may come back as `50.0`)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
        raise MappingError(f"{where}: expected a whole number, got {value!r}")
    return int(value)


def codings_to_fhir(codings: Iterable[Coding]) -> list[Json]:
    return [coding(c.system, c.code, c.display) for c in codings]


def concept_to_fhir(concept: Concept) -> Json:
    result: Json = {}
    put_if(result, "coding", codings_to_fhir(concept.codings))
    put_if(result, "text", concept.text)
    return result


def coding_from_fhir(value: Json, where: str) -> Coding:
    if not value.get("system") or not value.get("code"):
        raise MappingError(f"{where}: a coding needs both system and code")
    return Coding(system=value["system"], code=value["code"], display=value.get("display"))


def concept_from_fhir(value: Json, where: str) -> Concept:
    codings = [coding_from_fhir(c, f"{where}.coding[{i}]") for i, c in enumerate(value.get("coding", []))]
    return Concept(codings=codings, text=value.get("text"))


def codes_in(concept: Json | None, system: str) -> list[str]:
    """The codes of `system` in a CodeableConcept, in order."""
    if not concept:
        return []
    return [str(c["code"]) for c in concept.get("coding", []) if c.get("system") == system and "code" in c]


def first_code(concept: Json | None, system: str) -> str | None:
    codes = codes_in(concept, system)
    return codes[0] if codes else None


def identifiers_to_fhir(identifiers: Iterable[Identifier]) -> list[Json]:
    return [{"system": i.system, "value": i.value} for i in identifiers]


def identifiers_from_fhir(resource: Json, where: str) -> list[Identifier]:
    result = []
    for i, value in enumerate(resource.get("identifier", [])):
        if not value.get("system") or not value.get("value"):
            raise MappingError(f"{where}.identifier[{i}]: an identifier needs both system and value")
        result.append(Identifier(system=value["system"], value=value["value"]))
    return result


def name_to_fhir(name: PersonName) -> Json:
    result: Json = {}
    put_if(result, "text", name.text)
    put_if(result, "family", name.family)
    put_if(result, "given", list(name.given))
    return result


def name_from_fhir(resource: Json, where: str) -> PersonName:
    names = resource.get("name", [])
    if not names:
        raise MappingError(f"{where}.name: missing")
    first = names[0]
    return PersonName(text=first.get("text"), family=first.get("family"), given=first.get("given", []))


def extension(url: str, **value: Any) -> Json:
    """An extension with one `value[x]`, e.g. `extension(URL, valueCode="primary")`."""
    return {"url": url, **value}


def extensions(element: Json | None, url: str) -> list[Json]:
    if not element:
        return []
    return [e for e in element.get("extension", []) if e.get("url") == url]


def extension_value(element: Json | None, url: str, key: str) -> Any:
    """The `key` (e.g. `valueCode`) of the first extension with `url`, or None."""
    found = extensions(element, url)
    return found[0].get(key) if found else None


def if_none_exist(identifier: Identifier) -> str:
    """The conditional-create query `identifier=system|value`.

    `\\`, `|`, `,` and `$` are escaped as FHIR search requires, then the parts are percent-encoded so that a
    value with `&`, `=`, `#` or spaces survives being a URL query.
    """

    def part(text: str) -> str:
        return quote(_FHIR_ESCAPED.sub(r"\\\1", text), safe=":/@")

    return f"identifier={part(identifier.system)}|{part(identifier.value)}"


@dataclass
class TransactionBuilder:
    """Collects the entries of a transaction Bundle, each under a fresh `urn:uuid:` fullUrl."""

    new_uuid: Callable[[], UUID] = uuid4
    entries: list[Json] = field(default_factory=list)

    def new_url(self) -> str:
        return f"urn:uuid:{self.new_uuid()}"

    def add(self, full_url: str, resource: Json, *, identifier: Identifier | None = None) -> None:
        """Add `resource`: conditional create when matched by `identifier`, else update by id or create."""
        resource_type = resource["resourceType"]
        request: Json
        if identifier is not None:
            request = {"method": "POST", "url": resource_type, "ifNoneExist": if_none_exist(identifier)}
        elif "id" in resource:
            request = {"method": "PUT", "url": f"{resource_type}/{resource['id']}"}
        else:
            request = {"method": "POST", "url": resource_type}
        self.entries.append({"fullUrl": full_url, "resource": resource, "request": request})

    def bundle(self) -> Json:
        return {"resourceType": "Bundle", "type": "transaction", "entry": self.entries}


class Resolver:
    """Finds the resources a CarePlan references, by the reference strings as they stand in the CarePlan.

    Keys of `resolved` are references: `Type/id` for stored resources, or the `fullUrl` of a Bundle entry
    (`urn:uuid:...`, absolute URLs). A versioned relative reference falls back to its `Type/id`. References
    are read by `mappings.references`, as compartments and search indexes read them: an absolute URL is
    found only as a `fullUrl`, never as the local resource its `Type/id` tail happens to name, and a
    malformed reference (`Patient/A/Patient/B`) is refused, never read as one of the patients it names.
    """

    def __init__(self, resolved: Mapping[str, Json]) -> None:
        self._resolved = resolved

    def resolve(self, value: Json | None, expected_type: str, where: str) -> Json:
        target = (value or {}).get("reference")
        if not isinstance(target, str) or not target:
            raise MappingError(f"{where}: missing reference")
        parsed = parse_reference(target)
        if parsed.kind == "malformed":
            raise MappingError(f"{where}: {target!r} is not a valid reference; {parsed.problem}")
        resource = self._lookup(target)
        if resource is None:
            raise MappingError(f"{where}: reference {target!r} is not among the resolved resources")
        if resource.get("resourceType") != expected_type:
            raise MappingError(
                f"{where}: {target!r} is a {resource.get('resourceType')}, expected a {expected_type}"
            )
        return resource

    def key(self, value: Json | None) -> str:
        """One key per resource, whichever form of reference points at it."""
        target = str((value or {}).get("reference", ""))
        resource = self._lookup(target)
        if resource is not None and "id" in resource:
            return f"{resource['resourceType']}/{resource['id']}"
        return target

    def _lookup(self, target: str) -> Json | None:
        resource = self._resolved.get(target)
        if resource is not None:
            return resource
        key = parse_reference(target).key
        return None if key is None else self._resolved.get(key)


def resolved_from_bundle(bundle: Json) -> dict[str, Json]:
    """Every resource of a Bundle (transaction, transaction-response, searchset) by fullUrl and `Type/id`."""
    resolved: dict[str, Json] = {}
    for entry in bundle.get("entry", []):
        resource = entry.get("resource")
        if not isinstance(resource, dict):
            continue
        if entry.get("fullUrl"):
            resolved[entry["fullUrl"]] = resource
        if resource.get("id"):
            resolved[f"{resource['resourceType']}/{resource['id']}"] = resource
    return resolved
