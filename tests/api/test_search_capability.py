"""Search in the contract: the CapabilityStatement and the OpenAPI document list every search parameter.

Spec: https://hl7.org/fhir/R4/capabilitystatement-definitions.html#CapabilityStatement.rest.resource.searchParam
(`searchParam`, `searchInclude`, `searchRevInclude`, the `search-type` and `search-system` interactions).
"""

import httpx
from fastapi import FastAPI

from service.fhir.registry import RESOURCE_DEFINITIONS
from service.fhir.search_parameters import parameters_for


class TestCapabilityStatement:
    async def test_every_parameter_with_type_and_definition(self, client: httpx.AsyncClient) -> None:
        rest = (await client.get("/fhir/metadata")).json()["rest"][0]
        for resource in rest["resource"]:
            listed = {p["name"]: p for p in resource["searchParam"]}
            assert set(listed) == set(parameters_for(resource["type"])), resource["type"]
            for code, parameter in parameters_for(resource["type"]).items():
                assert listed[code]["type"] == parameter.type
                assert listed[code]["definition"] == parameter.url
            assert {"code": "search-type"} in resource["interaction"]
        assert {"code": "search-system"} in rest["interaction"]
        assert {p["name"] for p in rest["searchParam"]} >= {"_id", "_lastUpdated"}

    async def test_includes_and_revincludes(self, client: httpx.AsyncClient) -> None:
        rest = (await client.get("/fhir/metadata")).json()["rest"][0]
        by_type = {r["type"]: r for r in rest["resource"]}
        assert "CarePlan:care-team" in by_type["CarePlan"]["searchInclude"]
        assert "*" in by_type["CarePlan"]["searchInclude"]
        assert "CarePlan:subject" in by_type["Patient"]["searchRevInclude"]
        assert "QuestionnaireResponse:questionnaire" in by_type["Questionnaire"]["searchRevInclude"]
        assert "CareTeam:participant" in by_type["Practitioner"]["searchRevInclude"]

    async def test_registry_parameters_are_those_the_issue_names(self) -> None:
        expected = {
            "Patient": {"name", "family", "given", "birthdate", "gender", "telecom", "email", "phone"},
            "CarePlan": {"patient", "subject", "status", "intent", "category", "care-team", "goal"}
            | {"condition", "date", "instantiates-canonical", "based-on", "part-of", "activity-code"},
            "QuestionnaireResponse": {"questionnaire", "subject", "patient", "author", "status", "authored"}
            | {"based-on", "part-of", "source"},
            "Questionnaire": {"url", "version", "name", "title", "status", "date", "publisher", "code"},
        }
        common = {"_id", "_lastUpdated", "_tag", "_profile", "_security", "identifier"}
        for resource_type, codes in expected.items():
            assert codes | common <= set(parameters_for(resource_type)), resource_type


class TestOpenApi:
    def test_search_operations_list_their_parameters(self, app: FastAPI) -> None:
        paths = app.openapi()["paths"]
        for spec in RESOURCE_DEFINITIONS:
            get = paths[f"/fhir/{spec.name}"]["get"]
            names = {p["name"] for p in get["parameters"]}
            assert set(parameters_for(spec.name)) <= names
            assert {"_count", "_sort", "_include", "_revinclude", "_total", "_summary", "_elements"} <= names
            assert {"200", "400", "406"} <= set(get["responses"])
            post = paths[f"/fhir/{spec.name}/_search"]["post"]
            form = post["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
            assert set(parameters_for(spec.name)) <= set(form["properties"])
        system = paths["/fhir"]["get"]
        assert "_type" in {p["name"] for p in system["parameters"]}
