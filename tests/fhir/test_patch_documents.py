"""JSON Patch and FHIRPath Patch applied to resource JSON, without a database.

https://hl7.org/fhir/R4/http.html#patch and https://hl7.org/fhir/R4/fhirpatch.html.
"""

from typing import Any

import pytest

from service.errors import BadRequest, Unprocessable
from service.fhir.patch import apply_fhirpath_patch, apply_json_patch

PATIENT: dict[str, Any] = {
    "resourceType": "Patient",
    "id": "p1",
    "name": [{"family": "Rivera", "given": ["Sam", "Alex"]}],
    "identifier": [{"system": "urn:a", "value": "1"}, {"system": "urn:b", "value": "2"}],
    "extension": [{"url": "urn:ext", "valueString": "x"}],
}


def op(kind: str, path: str, **parts: Any) -> dict[str, Any]:
    part: list[dict[str, Any]] = [{"name": "type", "valueCode": kind}, {"name": "path", "valueString": path}]
    for name, value in parts.items():
        if name in ("index", "source", "destination"):
            part.append({"name": name, "valueInteger": value})
        elif name == "name":
            part.append({"name": "name", "valueString": value})
        elif name == "parts":
            part.append({"name": "value", "part": value})
        else:
            part.append({"name": "value", name: value})
    return {"name": "operation", "part": part}


def fhirpath(*operations: dict[str, Any]) -> dict[str, Any]:
    return apply_fhirpath_patch(PATIENT, {"resourceType": "Parameters", "parameter": list(operations)})


class TestJsonPatch:
    def test_applies_in_order_and_leaves_the_input_alone(self) -> None:
        result = apply_json_patch(
            PATIENT,
            [{"op": "add", "path": "/gender", "value": "male"}, {"op": "remove", "path": "/name/0/given/1"}],
        )

        assert result["gender"] == "male"
        assert result["name"][0]["given"] == ["Sam"]
        assert PATIENT["name"][0]["given"] == ["Sam", "Alex"]

    def test_failing_test_names_the_operation(self) -> None:
        with pytest.raises(Unprocessable) as raised:
            apply_json_patch(
                PATIENT,
                [
                    {"op": "add", "path": "/active", "value": True},
                    {"op": "test", "path": "/id", "value": "x"},
                ],
            )

        assert raised.value.issues[0].expression == "JsonPatch[1]"


class TestFhirPathPatch:
    def test_add_to_a_repeating_element_creates_the_list(self) -> None:
        assert fhirpath(op("add", "Patient", name="address", valueAddress={"city": "Lyon"}))["address"] == [
            {"city": "Lyon"}
        ]

    def test_add_backbone_element_from_parts(self) -> None:
        result = fhirpath(
            op("add", "Patient", name="contact", parts=[{"name": "gender", "valueCode": "female"}])
        )

        assert result["contact"] == [{"gender": "female"}]

    def test_add_to_an_existing_single_element_is_refused(self) -> None:
        with pytest.raises(Unprocessable):
            fhirpath(op("add", "Patient", name="id", valueString="p2"))

    def test_replace_through_extension_function(self) -> None:
        result = fhirpath(op("replace", "Patient.extension('urn:ext').value", valueString="y"))

        assert (
            result["extension"][0] == {"url": "urn:ext", "valueString": "x", "value": "y"}
            or result["extension"][0]["valueString"] == "y"
        )

    def test_replace_selected_by_where(self) -> None:
        result = fhirpath(
            op("replace", "Patient.identifier.where(system = 'urn:b')", valueIdentifier={"value": "9"})
        )

        assert result["identifier"][1] == {"value": "9"}

    def test_delete_of_nothing_is_no_change(self) -> None:
        assert fhirpath(op("delete", "Patient.birthDate")) == PATIENT

    def test_delete_of_several_is_refused(self) -> None:
        with pytest.raises(Unprocessable):
            fhirpath(op("delete", "Patient.identifier"))

    def test_first_last_and_index(self) -> None:
        result = fhirpath(
            op("delete", "Patient.identifier.last()"), op("delete", "Patient.name[0].given.first()")
        )

        assert result["identifier"] == [{"system": "urn:a", "value": "1"}]
        assert result["name"][0]["given"] == ["Alex"]

    @pytest.mark.parametrize(
        "path",
        [
            "Patient.name.ofType(HumanName)",
            "Patient.identifier | Patient.name",
            "Patient.name.where(",
            "descendants()",
        ],
    )
    def test_unsupported_paths_are_400(self, path: str) -> None:
        with pytest.raises(BadRequest):
            fhirpath(op("delete", path))

    def test_malformed_parameters(self) -> None:
        with pytest.raises(BadRequest):
            apply_fhirpath_patch(PATIENT, {"resourceType": "Parameters", "parameter": [{"name": "op"}]})
