"""Export the OpenAPI document: `python -m service.openapi --write` (or `--check` to compare)."""

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from service.config import Settings

DOCUMENT = Path(__file__).resolve().parents[1] / "openapi" / "openapi.json"


def build_document() -> dict[str, Any]:
    from service.app import create_app

    # The document does not depend on the database; no lifespan runs here.
    return create_app(Settings(database_url="postgresql://unused/unused")).openapi()


def render() -> str:
    return json.dumps(build_document(), indent=2, ensure_ascii=False, sort_keys=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--write", action="store_true", help=f"write {DOCUMENT.name}")
    group.add_argument("--check", action="store_true", help="fail if the committed document is stale")
    args = parser.parse_args(argv)
    current = render()
    if args.write:
        DOCUMENT.parent.mkdir(parents=True, exist_ok=True)
        DOCUMENT.write_text(current)
        return 0
    if not DOCUMENT.exists() or DOCUMENT.read_text() != current:
        print("openapi/openapi.json is stale: run `make openapi` and commit it", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
