"""The one reader of literal references: https://hl7.org/fhir/R4/references.html#literal

Relative `Type/id[/_history/vid]`, absolute `http(s)://base/Type/id[/_history/vid]` and other URIs
(`urn:uuid:`, `urn:oid:`), contained `#id`; anything else without a scheme is malformed. The property that
matters most for compartments: a target (type and id of a resource of this server) is only ever read from
a string that is exactly `Type/id` or `Type/id/_history/vid`.
"""

from __future__ import annotations

import string

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from mappings.references import Reference, parse_reference, reference_of

TYPES = st.from_regex(r"[A-Z][A-Za-z]{1,20}", fullmatch=True)
IDS = st.text(string.ascii_letters + string.digits + "-.", min_size=1, max_size=64)
SEGMENTS = st.text(string.ascii_letters + string.digits + "-._", min_size=1, max_size=12)
BASES = st.sampled_from(
    ["https://example.org/fhir", "http://localhost:8080/fhir", "https://h.example", "https://h/a/b/c"]
)


def relative(resource_type: str, resource_id: str, version: str | None) -> str:
    return f"{resource_type}/{resource_id}" + ("" if version is None else f"/_history/{version}")


class TestRelative:
    @given(TYPES, IDS, st.none() | IDS)
    def test_every_well_formed_reference_round_trips(
        self, resource_type: str, resource_id: str, version: str | None
    ) -> None:
        text = relative(resource_type, resource_id, version)

        parsed = parse_reference(text)

        assert parsed == Reference(text, "relative", resource_type, resource_id, version)
        assert parsed.target == (resource_type, resource_id)
        assert parsed.key == f"{resource_type}/{resource_id}"
        assert relative(resource_type, resource_id, parsed.version) == text

    @given(TYPES, IDS, st.none() | IDS, st.lists(SEGMENTS, min_size=1, max_size=4))
    def test_every_reference_with_extra_segments_is_malformed(
        self, resource_type: str, resource_id: str, version: str | None, extra: list[str]
    ) -> None:
        # `Type/id` followed by `_history/<vid>` is the one longer shape that is well-formed.
        assume(not (version is None and len(extra) == 2 and extra[0] == "_history" and len(extra[1]) <= 64))
        text = "/".join([relative(resource_type, resource_id, version), *extra])

        parsed = parse_reference(text)

        assert parsed.kind == "malformed"
        assert (parsed.resource_type, parsed.resource_id, parsed.target, parsed.key) == (None,) * 4

    @given(TYPES, IDS, TYPES, IDS)
    def test_two_references_run_together_name_neither_target(
        self, first_type: str, first_id: str, second_type: str, second_id: str
    ) -> None:
        parsed = parse_reference(f"{first_type}/{first_id}/{second_type}/{second_id}")

        assert parsed.kind == "malformed"
        assert parsed.target is None

    @given(TYPES, IDS, st.sampled_from([" ", "\t", "\n", "\x00", "\x7f"]), st.integers(min_value=0))
    def test_whitespace_or_a_control_character_anywhere_is_malformed(
        self, resource_type: str, resource_id: str, character: str, position: int
    ) -> None:
        text = f"{resource_type}/{resource_id}"
        at = position % (len(text) + 1)

        assert parse_reference(text[:at] + character + text[at:]).kind == "malformed"

    @pytest.mark.parametrize(
        "text",
        [
            "Patient/A/Patient/B",
            "Patient/",
            "Patient/a b",
            "/Patient/1",
            "Patient//1",
            "Patient/1/",
            "Patient/1/_history",
            "Patient/1/_history/",
            "Patient/1/_history/2/_history/3",
            "patient/1",
            "P/1",
            "Patient",
            "123",
            "Patient/" + "x" * 65,
            "Patient/1?x=y",
            "Patient?identifier=http://x|1",
            "Patient/é",
            "",
        ],
    )
    def test_malformed(self, text: str) -> None:
        parsed = parse_reference(text)

        assert parsed.kind == "malformed"
        assert parsed.problem
        assert parsed.target is None


class TestAbsolute:
    @given(BASES, TYPES, IDS, st.none() | IDS)
    def test_restful_url_gives_base_type_id_and_version_but_no_local_target(
        self, base: str, resource_type: str, resource_id: str, version: str | None
    ) -> None:
        text = f"{base}/{relative(resource_type, resource_id, version)}"

        parsed = parse_reference(text)

        assert parsed == Reference(text, "absolute", resource_type, resource_id, version, base=base)
        assert parsed.target is None

    @pytest.mark.parametrize(
        "text",
        [
            "urn:uuid:6c1a8a4e-1f0e-4d8c-9f4a-8a6b0b0f2f11",
            "urn:oid:2.16.840.1.113883.2.4.6.3",
            "https://example.org/some/page",
            "https://example.org/x?Patient/1",
            "https://example.org/x#Patient/1",
            "ftp://example.org/fhir/Patient/1",
        ],
    )
    def test_other_uris_are_opaque(self, text: str) -> None:
        assert parse_reference(text) == Reference(text, "absolute")

    def test_a_url_ending_in_two_references_names_the_last_under_the_first_as_base(self) -> None:
        parsed = parse_reference("https://h/fhir/Patient/A/Patient/B")

        assert (parsed.base, parsed.resource_id, parsed.target) == ("https://h/fhir/Patient/A", "B", None)

    @pytest.mark.parametrize("text", ["urn:uuid:", "urn:", "https:"])
    def test_a_scheme_alone_is_malformed(self, text: str) -> None:
        assert parse_reference(text).kind == "malformed"


class TestContained:
    @given(IDS)
    def test_contained_id(self, resource_id: str) -> None:
        text = f"#{resource_id}"

        assert parse_reference(text) == Reference(text, "contained", None, resource_id)

    def test_hash_alone_is_the_container(self) -> None:
        assert parse_reference("#") == Reference("#", "contained")

    @pytest.mark.parametrize("text", ["#a/b", "#Patient/1", "#a b", "##"])
    def test_contained_reference_that_is_not_an_id_is_malformed(self, text: str) -> None:
        assert parse_reference(text).kind == "malformed"


class TestAnyText:
    # Arbitrary text, and text made of the characters of references, which comes near them more often.
    @given(st.text(max_size=80) | st.text(alphabet="Patient/_history01AB#:.- ?", max_size=40))
    def test_a_target_is_read_only_from_exactly_type_and_id(self, text: str) -> None:
        parsed = parse_reference(text)

        if parsed.target is not None:
            resource_type, resource_id = parsed.target
            assert text == relative(resource_type, resource_id, parsed.version)
        if parsed.kind == "malformed":
            assert parsed.resource_type is None
            assert parsed.resource_id is None


class TestReferenceOf:
    def test_reads_the_reference_of_an_element(self) -> None:
        assert reference_of({"reference": "Patient/1", "display": "Sam"}) == parse_reference("Patient/1")

    @pytest.mark.parametrize(
        "value", [None, "Patient/1", {"display": "Sam"}, {"identifier": {"value": "1"}}, {"reference": 1}]
    )
    def test_nothing_for_an_element_without_a_literal_reference(self, value: object) -> None:
        assert reference_of(value) is None
