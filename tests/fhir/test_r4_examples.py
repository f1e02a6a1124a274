"""The official R4 (4.0.1) examples of the served types pass the boundary checks.

They are the spec's own instances, so any refusal here is a false positive of `check_resource` (for
instance a required-binding list that is incomplete). Source: the `hl7.fhir.r4.examples` 4.0.1 package.
"""

from pathlib import Path

import orjson
import pytest

from service.errors import FhirError
from service.fhir.parsing import check_resource
from service.fhir.registry import RESOURCES

EXAMPLES = sorted((Path(__file__).parent / "r4_examples").glob("*.json"))

# Examples that break R4 itself; refusing them is right, and a test proves it.
KNOWN_INVALID: dict[str, str] = {
    "Questionnaire-qs1": "its nested items omit linkId, which R4 requires (1..1)",
}


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_official_example_is_accepted(path: Path) -> None:
    resource = orjson.loads(path.read_bytes())
    if path.stem in KNOWN_INVALID:
        with pytest.raises(FhirError, match="linkId"):
            check_resource(resource["resourceType"], resource)
        return
    try:
        checked = check_resource(resource["resourceType"], resource)
    except FhirError as error:
        pytest.fail(f"{path.name}: {error}")
    assert checked["resourceType"] == resource["resourceType"]


def test_examples_cover_every_served_type() -> None:
    types = {orjson.loads(p.read_bytes())["resourceType"] for p in EXAMPLES}
    assert set(RESOURCES) <= types
