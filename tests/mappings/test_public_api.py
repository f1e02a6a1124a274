"""`mappings` exposes its API through `__all__`, and nothing listed there is missing or private."""

import mappings


class TestPublicApi:
    def test_every_listed_name_exists(self) -> None:
        for name in mappings.__all__:
            assert hasattr(mappings, name), name

    def test_listed_names_are_public_and_sorted(self) -> None:
        assert all(not name.startswith("_") for name in mappings.__all__)
        assert list(mappings.__all__) == sorted(mappings.__all__)

    def test_nothing_public_is_left_out(self) -> None:
        exported = {name for name in vars(mappings) if not name.startswith("_")}
        submodules = {
            "careplan",
            "content",
            "domain",
            "codes",
            "r4",
            "questionnaire",
            "terminology",
            "protocol",
            "careteam",
            "extensions",
            "plan_fhir",
            "plan_goals",
            "plan_fieldmap",
            "references",
        }
        assert exported - submodules <= set(mappings.__all__)
