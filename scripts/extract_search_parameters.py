"""Select the served FHIR search parameters from an unpacked FHIR package into the registry's data file.

Provenance of `service/fhir/data/search_parameters.json`: it was generated once by this script from the
official FHIR R4 (4.0.1) definitions, the `hl7.fhir.r4.examples` package version 4.0.1 (the definitions are
its `Bundle-searchParams.json`, also published as https://hl7.org/fhir/R4/search-parameters.json). Unpack the
package (`tar xzf hl7.fhir.r4.examples-4.0.1.tgz`) and run:

    python scripts/extract_search_parameters.py path/to/package

The script reads `search-parameters.json` or `Bundle-searchParams.json` if present, otherwise every
`SearchParameter-*.json` file of the folder. It keeps only the parameters in `SELECTED` below. Each kept
definition carries its `expression` exactly as the specification gives it, the whole expression even for
definitions shared by many types (`clinical-patient`, `conformance-url` ...): the extraction code picks the
parts that apply to a resource type. `base` is narrowed to the served types the parameter was selected for,
so the registry offers, for example, `individual-birthdate` on `Patient` but not on `RelatedPerson`.
Composite parameters are skipped (none is selected today).

Search parameter definitions: https://hl7.org/fhir/R4/searchparameter-registry.html
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

COMMON = ("_id", "_lastUpdated", "_tag", "_profile", "_security")
CONTENT = ("url", "version", "name", "title", "status", "date", "publisher", "identifier")

# The parameters the service supports, per base type (`Resource` holds those shared by every type).
SELECTED: dict[str, tuple[str, ...]] = {
    "Resource": COMMON,
    # The audit trail: searchable with an audit scope, never written through the API.
    "AuditEvent": (
        "date",
        "agent",
        "entity",
        "patient",
        "type",
        "subtype",
        "outcome",
        "action",
        "address",
        "altid",
    ),
    "Patient": ("identifier", "name", "family", "given", "birthdate", "gender", "telecom", "email", "phone"),
    "Practitioner": ("identifier", "name", "family", "given"),
    "PractitionerRole": ("identifier", "practitioner", "role", "specialty"),
    "RelatedPerson": ("identifier", "patient", "name", "relationship"),
    "CareTeam": ("identifier", "patient", "subject", "participant", "status", "category", "date"),
    "Condition": (
        "identifier",
        "patient",
        "subject",
        "code",
        "clinical-status",
        "verification-status",
        "category",
        "onset-date",
    ),
    "Goal": (
        "identifier",
        "patient",
        "subject",
        "lifecycle-status",
        "achievement-status",
        "category",
        "target-date",
    ),
    "CarePlan": (
        "identifier",
        "patient",
        "subject",
        "status",
        "intent",
        "category",
        "care-team",
        "goal",
        "condition",
        "date",
        "instantiates-canonical",
        "based-on",
        "part-of",
        "activity-code",
    ),
    "QuestionnaireResponse": (
        "identifier",
        "questionnaire",
        "subject",
        "patient",
        "author",
        "status",
        "authored",
        "based-on",
        "part-of",
        "source",
    ),
    "Questionnaire": (*CONTENT, "code"),
    "PlanDefinition": CONTENT,
    "ActivityDefinition": CONTENT,
    "CodeSystem": CONTENT,
    "ValueSet": CONTENT,
    "Observation": ("identifier", "patient", "subject", "code", "date", "status", "derived-from"),
}

DEFAULT_OUTPUT = Path(__file__).resolve().parents[1] / "service" / "fhir" / "data" / "search_parameters.json"
SUPPORTED_TYPES = frozenset({"token", "string", "reference", "date", "uri", "number", "quantity"})


def load_definitions(package: Path) -> list[dict[str, Any]]:
    """Every SearchParameter of the package, from its bundle when it has one."""
    for name in ("search-parameters.json", "Bundle-searchParams.json"):
        bundle_path = package / name
        if bundle_path.is_file():
            bundle = json.loads(bundle_path.read_text(encoding="utf-8"))
            return [
                entry["resource"]
                for entry in bundle.get("entry", [])
                if entry.get("resource", {}).get("resourceType") == "SearchParameter"
            ]
    paths = sorted(package.glob("SearchParameter-*.json"))
    return [json.loads(path.read_text(encoding="utf-8")) for path in paths]


def select(definitions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The selected definitions, with `base` narrowed to the types they were selected for."""
    bases: dict[str, list[str]] = {}
    by_url: dict[str, dict[str, Any]] = {}
    found: set[tuple[str, str]] = set()
    for definition in definitions:
        if definition.get("type") not in SUPPORTED_TYPES:
            continue
        for base in definition.get("base", []):
            if definition["code"] in SELECTED.get(base, ()):
                key = (base, definition["code"])
                if key in found:
                    raise SystemExit(f"two definitions of {base}.{definition['code']}")
                found.add(key)
                by_url[definition["url"]] = definition
                bases.setdefault(definition["url"], []).append(base)
    wanted = {(base, code) for base, codes in SELECTED.items() for code in codes}
    missing = sorted(f"{base}.{code}" for base, code in wanted - found)
    if missing:
        raise SystemExit(f"not found in the package: {', '.join(missing)}")
    selected = []
    for url, definition in sorted(by_url.items()):
        selected.append(
            {
                "code": definition["code"],
                "url": url,
                "type": definition["type"],
                "expression": definition["expression"],
                "base": sorted(bases[url]),
                "target": sorted(definition.get("target", [])),
            }
        )
    return selected


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("package", type=Path, help="an unpacked FHIR package folder (with package.json)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    manifest = json.loads((args.package / "package.json").read_text(encoding="utf-8"))
    document = {
        "source": f"{manifest['name']}#{manifest['version']}",
        "fhirVersion": manifest.get("fhirVersions", [manifest["version"]])[0],
        "parameters": select(load_definitions(args.package)),
    }
    args.output.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{len(document['parameters'])} parameters written to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
