"""Rewrite the golden files of the IPT content and `docs/worksheets.md` from `mappings.content`.

Run it after a deliberate content change, once the versions of the changed resources are bumped:

    python -m tests.mappings.regenerate_golden [golden-dir]

Golden files of resources that no longer exist are deleted.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from mappings.content import load_content, render_worksheets_markdown

ROOT = Path(__file__).resolve().parents[2]
GOLDEN_DIR = ROOT / "tests" / "mappings" / "golden" / "content"
WORKSHEETS_DOC = ROOT / "docs" / "worksheets.md"
COMMAND = "python -m tests.mappings.regenerate_golden"


def golden_name(resource: dict[str, Any]) -> str:
    return f"{resource['resourceType']}-{resource['id']}.json"


def serialise(resource: dict[str, Any]) -> str:
    return json.dumps(resource, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    target = Path(argv[0]) if argv else GOLDEN_DIR
    target.mkdir(parents=True, exist_ok=True)
    wanted = {golden_name(r): serialise(r) for r in load_content()}
    for existing in target.glob("*.json"):
        if existing.name not in wanted:
            existing.unlink()
    for name, text in wanted.items():
        path = target / name
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
    WORKSHEETS_DOC.parent.mkdir(parents=True, exist_ok=True)
    WORKSHEETS_DOC.write_text(render_worksheets_markdown(), encoding="utf-8")
    print(f"{len(wanted)} golden files in {target}; {WORKSHEETS_DOC.relative_to(ROOT)} rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
