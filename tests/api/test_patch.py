"""PATCH over HTTP: https://hl7.org/fhir/R4/http.html#patch

JSON Patch (RFC 6902) and FHIRPath Patch (https://hl7.org/fhir/R4/fhirpatch.html); the patched resource is
validated like a PUT body, and a patch that fails writes nothing.
"""

from typing import Any

import httpx
import pytest

from tests.factories import FHIR_JSON, patient

JSON_PATCH = {"Content-Type": "application/json-patch+json"}


def operation(kind: str, path: str, **parts: Any) -> dict[str, Any]:
    part = [{"name": "type", "valueCode": kind}, {"name": "path", "valueString": path}]
    for name, value in parts.items():
        if name in ("index", "source", "destination"):
            part.append({"name": name, "valueInteger": value})
        elif name == "name":
            part.append({"name": "name", "valueString": value})
        else:
            part.append({"name": "value", name: value})
    return {"name": "operation", "part": part}


def parameters(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Parameters", "parameter": list(operations)}


@pytest.fixture
async def stored(client: httpx.AsyncClient) -> dict[str, Any]:
    body = patient(id="p1", identifier=[{"system": "urn:a", "value": "1"}, {"system": "urn:b", "value": "2"}])
    response = await client.put("/fhir/Patient/p1", json=body, headers=FHIR_JSON)
    assert response.status_code == 201
    result: dict[str, Any] = response.json()
    return result


async def unchanged(client: httpx.AsyncClient) -> bool:
    return (await client.get("/fhir/Patient/p1")).json()["meta"]["versionId"] == "1"


class TestJsonPatch:
    async def test_replace_writes_a_new_version(
        self, client: httpx.AsyncClient, stored: dict[str, Any]
    ) -> None:
        patch = [{"op": "replace", "path": "/name/0/family", "value": "Moreno"}]

        response = await client.patch(
            "/fhir/Patient/p1", json=patch, headers={**JSON_PATCH, "If-Match": 'W/"1"'}
        )

        assert response.status_code == 200
        assert response.headers["etag"] == 'W/"2"'
        assert response.json()["name"][0]["family"] == "Moreno"

    async def test_stale_if_match_is_412(self, client: httpx.AsyncClient, stored: dict[str, Any]) -> None:
        patch = [{"op": "add", "path": "/gender", "value": "female"}]

        response = await client.patch(
            "/fhir/Patient/p1", json=patch, headers={**JSON_PATCH, "If-Match": 'W/"3"'}
        )

        assert response.status_code == 412
        assert await unchanged(client)

    @pytest.mark.parametrize(
        ("patch", "status", "expression"),
        [
            ([{"op": "test", "path": "/name/0/family", "value": "Other"}], 422, "JsonPatch[0]"),
            (
                [{"op": "add", "path": "/gender", "value": "female"}, {"op": "remove", "path": "/nothing"}],
                422,
                "JsonPatch[1]",
            ),
            ([{"op": "jump", "path": "/gender"}], 400, "JsonPatch[0]"),
            ([{"op": "add", "path": "/gender", "value": "mostly"}], 400, "Patient.gender"),
            ([{"op": "replace", "path": "/id", "value": "p2"}], 422, "JsonPatch"),
            ([{"op": "add", "path": "/favouriteColour", "value": "blue"}], 400, "Patient.favouriteColour"),
            ({"op": "add"}, 400, "JsonPatch"),
        ],
    )
    async def test_failing_patch_writes_nothing(
        self, client: httpx.AsyncClient, stored: dict[str, Any], patch: Any, status: int, expression: str
    ) -> None:
        response = await client.patch("/fhir/Patient/p1", json=patch, headers=JSON_PATCH)

        assert response.status_code == status
        assert response.json()["issue"][0]["expression"] == [expression]
        assert await unchanged(client)

    async def test_unknown_resource_is_404(self, client: httpx.AsyncClient) -> None:
        response = await client.patch("/fhir/Patient/none", json=[], headers=JSON_PATCH)

        assert response.status_code == 404

    async def test_deleted_resource_is_410(self, client: httpx.AsyncClient, stored: dict[str, Any]) -> None:
        await client.delete("/fhir/Patient/p1")

        response = await client.patch("/fhir/Patient/p1", json=[], headers=JSON_PATCH)

        assert response.status_code == 410

    async def test_xml_is_415(self, client: httpx.AsyncClient, stored: dict[str, Any]) -> None:
        response = await client.patch(
            "/fhir/Patient/p1", content=b"<x/>", headers={"Content-Type": "application/xml"}
        )

        assert response.status_code == 415

    async def test_patch_adding_a_missing_reference_is_422(
        self, client: httpx.AsyncClient, stored: dict[str, Any]
    ) -> None:
        patch = [{"op": "add", "path": "/generalPractitioner", "value": [{"reference": "Practitioner/none"}]}]

        response = await client.patch("/fhir/Patient/p1", json=patch, headers=JSON_PATCH)

        assert response.status_code == 422
        assert response.json()["issue"][0]["expression"] == ["Patient.generalPractitioner[0]"]
        assert await unchanged(client)


class TestFhirPathPatch:
    @pytest.mark.parametrize(
        ("operations", "check"),
        [
            (
                [operation("replace", "Patient.identifier.where(system='urn:b').value", valueString="9")],
                lambda r: r["identifier"][1]["value"] == "9",
            ),
            (
                [operation("add", "Patient", name="gender", valueCode="female")],
                lambda r: r["gender"] == "female",
            ),
            (
                [
                    operation(
                        "add", "Patient", name="telecom", valueContactPoint={"system": "phone", "value": "1"}
                    )
                ],
                lambda r: r["telecom"] == [{"system": "phone", "value": "1"}],
            ),
            ([operation("delete", "Patient.identifier[0]")], lambda r: len(r["identifier"]) == 1),
            ([operation("delete", "Patient.birthDate")], lambda r: "birthDate" not in r),
            (
                [operation("insert", "Patient.identifier", index=0, valueIdentifier={"value": "0"})],
                lambda r: [i["value"] for i in r["identifier"]] == ["0", "1", "2"],
            ),
            (
                [operation("move", "Patient.identifier", source=0, destination=1)],
                lambda r: [i["value"] for i in r["identifier"]] == ["2", "1"],
            ),
        ],
    )
    async def test_operations(
        self, client: httpx.AsyncClient, stored: dict[str, Any], operations: list[dict[str, Any]], check: Any
    ) -> None:
        response = await client.patch("/fhir/Patient/p1", json=parameters(*operations), headers=FHIR_JSON)

        assert response.status_code == 200, response.text
        assert check(response.json())

    @pytest.mark.parametrize(
        ("operations", "status"),
        [
            ([operation("replace", "Patient.identifier.value", valueString="9")], 422),
            ([operation("delete", "Patient.name.ofType(HumanName)")], 400),
            ([operation("insert", "Patient.identifier", index=5, valueIdentifier={"value": "0"})], 422),
            ([operation("explode", "Patient")], 400),
            ([operation("add", "Patient", name="gender", valueCode="mostly")], 400),
        ],
    )
    async def test_failures_write_nothing(
        self, client: httpx.AsyncClient, stored: dict[str, Any], operations: list[dict[str, Any]], status: int
    ) -> None:
        response = await client.patch("/fhir/Patient/p1", json=parameters(*operations), headers=FHIR_JSON)

        assert response.status_code == status
        assert response.json()["issue"][0]["expression"]
        assert await unchanged(client)
