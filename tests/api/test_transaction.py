"""Batch and transaction Bundles over HTTP: https://hl7.org/fhir/R4/http.html#transaction

A transaction is all or nothing (a failing entry leaves the database as it was), placeholders are replaced
everywhere, conditional entries are honoured and the response lists the entries in request order. A batch
answers each entry on its own.
"""

import base64
import copy
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from service.fhir.transaction_examples import TREATMENT_PLAN_TRANSACTION
from service.storage.indexing.rows import INDEX_TABLES
from service.storage.tables import resource_versions, resources
from tests.factories import FHIR_JSON, care_plan, patient, practitioner


def post(full_url: str, resource: dict[str, Any], **request: str) -> dict[str, Any]:
    return {
        "fullUrl": full_url,
        "resource": resource,
        "request": {"method": "POST", "url": resource["resourceType"], **request},
    }


def bundle(*entries: dict[str, Any], kind: str = "transaction") -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


async def row_counts(engine: AsyncEngine) -> dict[str, int]:
    """Rows of every resource and index table, audit records of the requests aside."""
    async with engine.connect() as connection:
        counts = {}
        for table in (resources, resource_versions, *INDEX_TABLES):
            statement = select(func.count()).select_from(table).where(table.c.resource_type != "AuditEvent")
            counts[table.name] = (await connection.execute(statement)).scalar_one()
        return counts


def issue(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    first: dict[str, Any] = body["issue"][0]
    return first


async def send(client: httpx.AsyncClient, body: dict[str, Any], **headers: str) -> httpx.Response:
    return await client.post("/fhir", json=body, headers={**FHIR_JSON, **headers})


class TestTreatmentPlanTransaction:
    async def test_whole_plan_is_created_with_references_rewritten(self, client: httpx.AsyncClient) -> None:
        response = await send(client, TREATMENT_PLAN_TRANSACTION)

        assert response.status_code == 200
        result = response.json()
        assert result["type"] == "transaction-response"
        entries = result["entry"]
        types = [e["resource"]["resourceType"] for e in entries]
        assert types == ["Patient", "Practitioner", "Condition", "Goal", "Goal", "CareTeam", "CarePlan"]
        for entry in entries:
            assert entry["response"]["status"] == "201 Created"
            resource = entry["resource"]
            assert entry["response"]["location"] == f"{resource['resourceType']}/{resource['id']}/_history/1"
            assert entry["response"]["etag"] == 'W/"1"'
            assert entry["response"]["lastModified"].endswith("Z")
        ids = {e["resource"]["resourceType"] + str(i): e["resource"]["id"] for i, e in enumerate(entries)}
        plan = (await client.get(f"/fhir/CarePlan/{ids['CarePlan6']}")).json()
        assert plan["subject"] == {"reference": f"Patient/{ids['Patient0']}"}
        assert plan["author"] == {"reference": f"Practitioner/{ids['Practitioner1']}"}
        assert plan["goal"] == [{"reference": f"Goal/{ids['Goal3']}"}, {"reference": f"Goal/{ids['Goal4']}"}]
        team = (await client.get(f"/fhir/CareTeam/{ids['CareTeam5']}")).json()
        # A nested reference (CareTeam.participant.member) is rewritten too.
        assert team["participant"][0]["member"] == {"reference": f"Practitioner/{ids['Practitioner1']}"}
        assert "urn:uuid" not in orjson.dumps(plan).decode()

    async def test_resending_the_plan_reuses_patient_and_practitioner(
        self, client: httpx.AsyncClient, engine: AsyncEngine
    ) -> None:
        first = (await send(client, TREATMENT_PLAN_TRANSACTION)).json()["entry"]
        second = (await send(client, TREATMENT_PLAN_TRANSACTION)).json()["entry"]

        assert [e["response"]["status"] for e in second[:2]] == ["200 OK", "200 OK"]
        assert second[1]["resource"]["id"] == first[1]["resource"]["id"]
        new_plan = second[6]["resource"]
        assert new_plan["author"]["reference"] == f"Practitioner/{first[1]['resource']['id']}"
        assert new_plan["subject"]["reference"] == f"Patient/{first[0]['resource']['id']}"
        async with engine.connect() as connection:
            practitioners = await connection.execute(
                select(func.count()).select_from(resources).where(resources.c.resource_type == "Practitioner")
            )
            assert practitioners.scalar_one() == 1

    async def test_prefer_minimal_leaves_resources_out(self, client: httpx.AsyncClient) -> None:
        response = await send(client, TREATMENT_PLAN_TRANSACTION, Prefer="return=minimal")

        entries = response.json()["entry"]
        assert all("resource" not in e and e["response"]["status"] == "201 Created" for e in entries)


class TestAllOrNothing:
    async def test_failing_last_of_fifty_entries_writes_nothing(
        self, client: httpx.AsyncClient, engine: AsyncEngine
    ) -> None:
        await client.put("/fhir/Patient/keep", json=patient(id="keep"), headers=FHIR_JSON)
        before = await row_counts(engine)
        entries = [
            post(f"urn:uuid:00000000-0000-0000-0000-{n:012d}", patient(family=f"P{n}")) for n in range(49)
        ]
        entries.append(post("urn:uuid:bad", patient(gender="mostly")))

        response = await send(client, bundle(*entries))

        assert response.status_code == 400
        assert issue(response)["expression"] == ["Bundle.entry[49].resource.gender"]
        assert await row_counts(engine) == before

    async def test_missing_reference_fails_naming_the_entry_element(
        self, client: httpx.AsyncClient, engine: AsyncEngine
    ) -> None:
        before = await row_counts(engine)
        response = await send(
            client,
            bundle(post("urn:uuid:p", patient()), post("urn:uuid:c", care_plan(subject="Patient/nobody"))),
        )

        assert response.status_code == 422
        assert issue(response)["expression"] == ["Bundle.entry[1].resource.subject"]
        assert await row_counts(engine) == before

    async def test_stale_if_match_fails_the_transaction(
        self, client: httpx.AsyncClient, engine: AsyncEngine
    ) -> None:
        created = (await client.put("/fhir/Patient/p1", json=patient(id="p1"), headers=FHIR_JSON)).json()
        await client.put("/fhir/Patient/p1", json={**created, "gender": "female"}, headers=FHIR_JSON)
        before = await row_counts(engine)
        update = {
            "resource": {**created, "gender": "male"},
            "request": {"method": "PUT", "url": "Patient/p1", "ifMatch": 'W/"1"'},
        }

        response = await send(client, bundle(post("urn:uuid:x", patient()), update))

        assert response.status_code == 412
        assert issue(response)["expression"] == ["Bundle.entry[1].request.ifMatch"]
        assert await row_counts(engine) == before

    async def test_duplicate_conditional_creates_are_refused(self, client: httpx.AsyncClient) -> None:
        criteria = "identifier=urn:mrn|1"
        entries = [post(f"urn:uuid:{n}", patient(), ifNoneExist=criteria) for n in range(2)]

        response = await send(client, bundle(*entries))

        assert response.status_code == 400
        assert issue(response)["expression"] == ["Bundle.entry[1].request.ifNoneExist"]


class TestProcessingRules:
    async def test_delete_runs_before_creates_and_reads_see_writes(self, client: httpx.AsyncClient) -> None:
        await client.put("/fhir/Patient/old", json=patient(id="old"), headers=FHIR_JSON)
        await client.put("/fhir/Patient/p1", json=patient(id="p1"), headers=FHIR_JSON)
        entries = [
            {"request": {"method": "GET", "url": "Patient/p1"}},
            {
                "resource": patient(id="p1", gender="female"),
                "request": {"method": "PUT", "url": "Patient/p1"},
            },
            post("urn:uuid:new", patient(family="New")),
            {"request": {"method": "DELETE", "url": "Patient/old"}},
        ]

        response = await send(client, bundle(*entries))

        assert response.status_code == 200
        result = response.json()["entry"]
        assert [e["response"]["status"] for e in result] == [
            "200 OK",
            "200 OK",
            "201 Created",
            "204 No Content",
        ]
        assert result[0]["resource"]["gender"] == "female"
        assert result[3]["response"]["etag"] == 'W/"2"'
        assert (await client.get("/fhir/Patient/old")).status_code == 410

    async def test_conditional_update_and_delete_entries(self, client: httpx.AsyncClient) -> None:
        mrn = {"identifier": [{"system": "urn:mrn", "value": "7"}]}
        await client.post("/fhir/Patient", json=patient(**mrn), headers=FHIR_JSON)
        await client.post(
            "/fhir/Practitioner",
            json=practitioner(identifier=[{"system": "urn:npi", "value": "9"}]),
            headers=FHIR_JSON,
        )
        entries = [
            {
                "resource": patient(family="Updated", **mrn),
                "request": {"method": "PUT", "url": "Patient?identifier=urn:mrn|7"},
            },
            {
                "resource": patient(identifier=[{"system": "urn:mrn", "value": "8"}]),
                "request": {"method": "PUT", "url": "Patient?identifier=urn:mrn|8"},
            },
            {"request": {"method": "DELETE", "url": "Practitioner?identifier=urn:npi|9"}},
        ]

        response = await send(client, bundle(*entries))

        assert response.status_code == 200
        result = response.json()["entry"]
        assert [e["response"]["status"] for e in result] == ["200 OK", "201 Created", "204 No Content"]
        assert result[0]["resource"]["name"][0]["family"] == "Updated"
        assert result[0]["response"]["etag"] == 'W/"2"'

    async def test_patch_entries_json_and_fhirpath(self, client: httpx.AsyncClient) -> None:
        await client.put("/fhir/Patient/p1", json=patient(id="p1"), headers=FHIR_JSON)
        await client.put("/fhir/Patient/p2", json=patient(id="p2"), headers=FHIR_JSON)
        json_patch = [{"op": "add", "path": "/gender", "value": "female"}]
        binary = {
            "resourceType": "Binary",
            "contentType": "application/json-patch+json",
            "data": base64.b64encode(orjson.dumps(json_patch)).decode(),
        }
        parameters = {
            "resourceType": "Parameters",
            "parameter": [
                {
                    "name": "operation",
                    "part": [
                        {"name": "type", "valueCode": "add"},
                        {"name": "path", "valueString": "Patient"},
                        {"name": "name", "valueString": "birthDate"},
                        {"name": "value", "valueDate": "1990-01-01"},
                    ],
                }
            ],
        }
        entries = [
            {"resource": binary, "request": {"method": "PATCH", "url": "Patient/p1"}},
            {"resource": parameters, "request": {"method": "PATCH", "url": "Patient/p2"}},
        ]

        response = await send(client, bundle(*entries))

        assert response.status_code == 200
        result = response.json()["entry"]
        assert result[0]["resource"]["gender"] == "female"
        assert result[1]["resource"]["birthDate"] == "1990-01-01"

    async def test_reference_to_resource_deleted_in_the_same_transaction_fails(
        self, client: httpx.AsyncClient
    ) -> None:
        await client.put("/fhir/Patient/p1", json=patient(id="p1"), headers=FHIR_JSON)
        entries = [
            post("urn:uuid:c", care_plan(subject="Patient/p1")),
            {"request": {"method": "DELETE", "url": "Patient/p1"}},
        ]

        response = await send(client, bundle(*entries))

        assert response.status_code == 422
        assert issue(response)["expression"] == ["Bundle.entry[0].resource.subject"]
        assert (await client.get("/fhir/Patient/p1")).status_code == 200

    async def test_deleting_a_resource_and_its_referrer_together_succeeds(
        self, client: httpx.AsyncClient
    ) -> None:
        await client.put("/fhir/Patient/p1", json=patient(id="p1"), headers=FHIR_JSON)
        plan = (
            await client.post("/fhir/CarePlan", json=care_plan(subject="Patient/p1"), headers=FHIR_JSON)
        ).json()
        entries = [
            {"request": {"method": "DELETE", "url": "Patient/p1"}},
            {"request": {"method": "DELETE", "url": f"CarePlan/{plan['id']}"}},
        ]

        response = await send(client, bundle(*entries))

        assert response.status_code == 200
        assert (await client.get("/fhir/Patient/p1")).status_code == 410

    async def test_deleting_a_still_referenced_resource_fails(self, client: httpx.AsyncClient) -> None:
        await client.put("/fhir/Patient/p1", json=patient(id="p1"), headers=FHIR_JSON)
        await client.post("/fhir/CarePlan", json=care_plan(subject="Patient/p1"), headers=FHIR_JSON)

        response = await send(client, bundle({"request": {"method": "DELETE", "url": "Patient/p1"}}))

        assert response.status_code == 409
        assert issue(response)["expression"] == ["Bundle.entry[0].resource"]
        assert "CarePlan/" in issue(response)["diagnostics"]


class TestBundleRules:
    @pytest.mark.parametrize(
        ("body", "status", "expression"),
        [
            ({"resourceType": "Bundle", "type": "collection"}, 400, "Bundle.type"),
            ({"resourceType": "Patient"}, 400, "Bundle.resourceType"),
            (bundle({"resource": patient()}), 400, "Bundle.entry[0].request"),
            (
                bundle(post("urn:uuid:a", patient()), post("urn:uuid:a", patient())),
                400,
                "Bundle.entry[1].fullUrl",
            ),
            (
                bundle(
                    {"resource": patient(id="a"), "request": {"method": "PUT", "url": "Patient/a"}},
                    {"request": {"method": "DELETE", "url": "Patient/a"}},
                ),
                400,
                "Bundle.entry[1]",
            ),
            (bundle({"request": {"method": "POST", "url": "Patient"}}), 400, "Bundle.entry[0].resource"),
            (
                bundle({"request": {"method": "GET", "url": "Spaceship/1"}}),
                404,
                "Bundle.entry[0].request.url",
            ),
            (
                bundle({"resource": practitioner(), "request": {"method": "POST", "url": "Patient"}}),
                400,
                "Bundle.entry[0].resource.resourceType",
            ),
            (
                bundle({"request": {"method": "FETCH", "url": "Patient"}}),
                400,
                "Bundle.entry[0].request.method",
            ),
        ],
    )
    async def test_bundle_faults_are_refused_and_named(
        self,
        client: httpx.AsyncClient,
        engine: AsyncEngine,
        body: dict[str, Any],
        status: int,
        expression: str,
    ) -> None:
        before = await row_counts(engine)

        response = await send(client, body)

        assert response.status_code == status
        assert issue(response)["expression"] == [expression]
        assert await row_counts(engine) == before

    async def test_more_entries_than_the_limit_is_413(self, client: httpx.AsyncClient) -> None:
        entries = [{"request": {"method": "GET", "url": "Patient/x"}}] * 1001

        response = await send(client, bundle(*entries, kind="batch"))

        assert response.status_code == 413
        assert issue(response)["expression"] == ["Bundle.entry"]

    async def test_xml_is_refused(self, client: httpx.AsyncClient) -> None:
        response = await client.post(
            "/fhir", content=b"<Bundle/>", headers={"Content-Type": "application/fhir+xml"}
        )

        assert response.status_code == 415


class TestBatch:
    async def test_entries_are_independent(self, client: httpx.AsyncClient, engine: AsyncEngine) -> None:
        body = bundle(
            post("urn:uuid:a", patient(family="First")),
            post("urn:uuid:b", patient(gender="mostly")),
            {"request": {"method": "GET", "url": "Patient/nobody"}},
            post("urn:uuid:c", care_plan(subject="Patient/nobody")),
            post("urn:uuid:d", patient(family="Last")),
            kind="batch",
        )

        response = await send(client, body)

        assert response.status_code == 200
        result = response.json()
        assert result["type"] == "batch-response"
        codes = [e["response"]["status"].split()[0] for e in result["entry"]]
        assert codes == ["201", "400", "404", "422", "201"]
        outcome = result["entry"][1]["response"]["outcome"]
        assert outcome["issue"][0]["expression"] == ["Bundle.entry[1].resource.gender"]
        assert (await row_counts(engine))["resources"] == 2

    async def test_a_malformed_entry_does_not_stop_the_others(self, client: httpx.AsyncClient) -> None:
        body = bundle({"resource": patient()}, post("urn:uuid:a", patient()), kind="batch")

        response = await send(client, body)

        statuses = [e["response"]["status"] for e in response.json()["entry"]]
        assert statuses == ["400 Bad Request", "201 Created"]

    async def test_batch_conditional_create_and_update(self, client: httpx.AsyncClient) -> None:
        mrn = {"identifier": [{"system": "urn:mrn", "value": "1"}]}
        entries = [post("urn:uuid:a", patient(**mrn), ifNoneExist="identifier=urn:mrn|1")]

        first = await send(client, bundle(*copy.deepcopy(entries), kind="batch"))
        second = await send(client, bundle(*copy.deepcopy(entries), kind="batch"))

        assert first.json()["entry"][0]["response"]["status"] == "201 Created"
        assert second.json()["entry"][0]["response"]["status"] == "200 OK"
        assert second.json()["entry"][0]["resource"]["id"] == first.json()["entry"][0]["resource"]["id"]
