"""The README shows the two commands first and documents every setting there is."""

import re
from pathlib import Path

from service.config import Settings

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
UNPREFIXED = {"database_url", "data_dir", "port"}


class TestReadme:
    def test_two_commands_come_first(self) -> None:
        first_block = README.split("```sh", 1)[1].split("```", 1)[0]
        assert "make run" in first_block
        assert "make test" in first_block

    def test_settings_table_matches_the_code(self) -> None:
        documented = set(re.findall(r"^\| `([A-Z_]+)` \|", README, flags=re.MULTILINE))
        expected = {
            name.upper() if name in UNPREFIXED else f"IPT_FHIR_{name.upper()}"
            for name in Settings.model_fields
        }
        assert documented == expected
