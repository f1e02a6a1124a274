"""Golden files of the IPT content: a published version never changes silently.

FHIR content is cited by `url|version`, so a resource whose content changes must get a new version
(https://hl7.org/fhir/R4/resource.html#versions); these tests compare every generated resource with its
committed golden file and `docs/worksheets.md` with its generator.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mappings.content import load_content, render_worksheets_markdown

ROOT = Path(__file__).resolve().parents[2]
GOLDEN_DIR = ROOT / "tests" / "mappings" / "golden" / "content"
WORKSHEETS_DOC = ROOT / "docs" / "worksheets.md"
REGENERATE = "regenerate the golden files (python -m tests.mappings.regenerate_golden)"

CONTENT = load_content()


def _name(resource: dict[str, Any]) -> str:
    return f"{resource['resourceType']}-{resource['id']}.json"


@pytest.mark.parametrize("resource", CONTENT, ids=[_name(r) for r in CONTENT])
def test_resource_matches_its_golden_file(resource: dict[str, Any]) -> None:
    label = f"{resource['resourceType']}/{resource['id']}"
    path = GOLDEN_DIR / _name(resource)
    if not path.exists():
        pytest.fail(f"{label} has no golden file: {REGENERATE}")
    golden = json.loads(path.read_text(encoding="utf-8"))
    if golden == resource:
        return
    if golden.get("version") == resource["version"]:
        pytest.fail(
            f"content of {label} changed but its version did not: bump the version "
            f"(still {resource['version']}), then {REGENERATE}"
        )
    pytest.fail(
        f"{label} is now version {resource['version']} (golden: {golden.get('version')}): {REGENERATE}"
    )


def test_no_golden_file_without_a_resource() -> None:
    expected = {_name(r) for r in CONTENT}
    stale = sorted(p.name for p in GOLDEN_DIR.glob("*.json") if p.name not in expected)
    assert not stale, f"golden files without a resource {stale}: {REGENERATE}"


def test_worksheets_doc_is_current() -> None:
    current = WORKSHEETS_DOC.read_text(encoding="utf-8") if WORKSHEETS_DOC.exists() else ""
    assert current == render_worksheets_markdown(), f"docs/worksheets.md is stale: {REGENERATE}"
