"""The CapabilityStatement tells the truth: https://hl7.org/fhir/R4/capabilitystatement.html"""

import httpx
from fastapi import FastAPI

from mappings.r4 import model_class
from service.fhir.registry import RESOURCE_DEFINITIONS


class TestCapabilityStatement:
    async def test_is_valid_r4_with_version_and_formats(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/fhir/metadata")
        assert response.status_code == 200
        statement = response.json()
        model_class("CapabilityStatement").model_validate(statement)
        assert statement["fhirVersion"] == "4.0.1"
        assert "application/fhir+json" in statement["format"]

    async def test_lists_every_served_type_and_interaction(self, client: httpx.AsyncClient) -> None:
        rest = (await client.get("/fhir/metadata")).json()["rest"][0]
        by_type = {r["type"]: r for r in rest["resource"]}
        assert set(by_type) == {spec.name for spec in RESOURCE_DEFINITIONS} | {"AuditEvent"}
        audit = by_type.pop("AuditEvent")
        assert {i["code"] for i in audit["interaction"]} == {"read", "search-type"}
        assert {p["name"] for p in audit["searchParam"]} >= {"date", "entity", "agent", "patient", "outcome"}
        for resource in by_type.values():
            codes = {i["code"] for i in resource["interaction"]}
            assert {
                "read",
                "vread",
                "create",
                "update",
                "delete",
                "history-instance",
                "history-type",
            } <= codes
            assert resource["versioning"] == "versioned-update"
            assert resource["updateCreate"] is True
        assert {"code": "history-system"} in rest["interaction"]

    async def test_every_claimed_interaction_has_a_route(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        paths = app.openapi()["paths"]
        rest = (await client.get("/fhir/metadata")).json()["rest"][0]
        route_for = {
            "read": ("/fhir/{t}/{{resource_id}}", "get"),
            "vread": ("/fhir/{t}/{{resource_id}}/_history/{{version_id}}", "get"),
            "update": ("/fhir/{t}/{{resource_id}}", "put"),
            "delete": ("/fhir/{t}/{{resource_id}}", "delete"),
            "create": ("/fhir/{t}", "post"),
            "history-instance": ("/fhir/{t}/{{resource_id}}/_history", "get"),
            "history-type": ("/fhir/{t}/_history", "get"),
            "search-type": ("/fhir/{t}", "get"),
            "patch": ("/fhir/{t}/{{resource_id}}", "patch"),
        }
        for resource in rest["resource"]:
            for interaction in resource["interaction"]:
                assert interaction["code"] in route_for, f"unexpected interaction {interaction['code']}"
                template, method = route_for[interaction["code"]]
                path = template.format(t=resource["type"])
                assert method in paths[path], f"{interaction['code']} of {resource['type']} has no route"
