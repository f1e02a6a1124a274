"""The RESTful interactions over HTTP on PostgreSQL.

Spec: https://hl7.org/fhir/R4/http.html (create, read, vread, update, delete, history; ETag, Last-Modified,
Location, If-Match, Prefer).
"""

from email.utils import parsedate_to_datetime

import httpx
import pytest

from tests.factories import FHIR_JSON, patient, questionnaire_response


async def _create(client: httpx.AsyncClient, resource: dict[str, object]) -> httpx.Response:
    response = await client.post(f"/fhir/{resource['resourceType']}", json=resource, headers=FHIR_JSON)
    assert response.status_code == 201, response.text
    return response


class TestCreate:
    async def test_assigns_uuid_and_version_one(self, client: httpx.AsyncClient) -> None:
        response = await _create(client, patient())
        body = response.json()
        assert len(body["id"]) == 36
        assert body["meta"]["versionId"] == "1"
        assert response.headers["etag"] == 'W/"1"'
        assert response.headers["location"] == f"http://testserver/fhir/Patient/{body['id']}/_history/1"
        assert response.headers["content-type"].startswith("application/fhir+json")
        modified = parsedate_to_datetime(response.headers["last-modified"])
        assert modified.tzinfo is not None

    async def test_ignores_client_id_and_server_meta(self, client: httpx.AsyncClient) -> None:
        sent = patient(
            id="chosen",
            meta={"versionId": "9", "lastUpdated": "2001-01-01T00:00:00Z", "tag": [{"code": "t"}]},
        )
        body = (await _create(client, sent)).json()
        assert body["id"] != "chosen"
        assert body["meta"]["versionId"] == "1"
        assert body["meta"]["lastUpdated"] != "2001-01-01T00:00:00Z"
        assert body["meta"]["tag"] == [{"code": "t"}]

    async def test_prefer_minimal_returns_no_body(self, client: httpx.AsyncClient) -> None:
        response = await client.post(
            "/fhir/Patient", json=patient(), headers={**FHIR_JSON, "Prefer": "return=minimal"}
        )
        assert response.status_code == 201
        assert response.content == b""
        assert response.headers["location"].endswith("/_history/1")

    async def test_prefer_operation_outcome(self, client: httpx.AsyncClient) -> None:
        response = await client.post(
            "/fhir/Patient", json=patient(), headers={**FHIR_JSON, "Prefer": "return=OperationOutcome"}
        )
        assert response.status_code == 201
        outcome = response.json()
        assert outcome["resourceType"] == "OperationOutcome"
        assert outcome["issue"][0]["severity"] == "information"

    async def test_plain_json_is_accepted(self, client: httpx.AsyncClient) -> None:
        response = await client.post(
            "/fhir/Patient",
            content=b'{"resourceType":"Patient"}',
            headers={"Content-Type": "application/json"},
        )
        assert response.status_code == 201


class TestRead:
    async def test_returns_current_version_with_headers(self, client: httpx.AsyncClient) -> None:
        created = (await _create(client, patient(family="Lee"))).json()
        response = await client.get(f"/fhir/Patient/{created['id']}")
        assert response.status_code == 200
        assert response.json() == created
        assert response.headers["etag"] == 'W/"1"'
        assert "last-modified" in response.headers

    async def test_unknown_id_is_404_outcome(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/fhir/Patient/does-not-exist")
        assert response.status_code == 404
        assert response.json()["issue"][0]["code"] == "not-found"

    async def test_invalid_id_is_400(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/fhir/Patient/" + "x" * 65)
        assert response.status_code == 400
        assert response.json()["resourceType"] == "OperationOutcome"


class TestUpdate:
    async def test_new_version_and_vread_of_both(self, client: httpx.AsyncClient) -> None:
        created = (await _create(client, patient(family="Old"))).json()
        changed = {**created, "name": [{"family": "New"}]}
        response = await client.put(f"/fhir/Patient/{created['id']}", json=changed, headers=FHIR_JSON)
        assert response.status_code == 200
        assert response.json()["meta"]["versionId"] == "2"
        assert response.headers["etag"] == 'W/"2"'
        assert response.headers["location"].endswith(f"/Patient/{created['id']}/_history/2")
        first = await client.get(f"/fhir/Patient/{created['id']}/_history/1")
        second = await client.get(f"/fhir/Patient/{created['id']}/_history/2")
        assert first.json()["name"][0]["family"] == "Old"
        assert second.json()["name"] == [{"family": "New"}]
        assert (await client.get(f"/fhir/Patient/{created['id']}/_history/3")).status_code == 404

    async def test_creates_with_client_id(self, client: httpx.AsyncClient) -> None:
        response = await client.put(
            "/fhir/Patient/client-id-1", json=patient(id="client-id-1"), headers=FHIR_JSON
        )
        assert response.status_code == 201
        assert response.json()["id"] == "client-id-1"
        assert response.headers["location"].endswith("/Patient/client-id-1/_history/1")

    async def test_unchanged_content_keeps_version(self, client: httpx.AsyncClient) -> None:
        created = (await _create(client, patient())).json()
        response = await client.put(f"/fhir/Patient/{created['id']}", json=created, headers=FHIR_JSON)
        assert response.status_code == 200
        assert response.json()["meta"]["versionId"] == "1"

    async def test_matching_if_match_succeeds(self, client: httpx.AsyncClient) -> None:
        created = (await _create(client, patient())).json()
        response = await client.put(
            f"/fhir/Patient/{created['id']}",
            json={**created, "gender": "female"},
            headers={**FHIR_JSON, "If-Match": 'W/"1"'},
        )
        assert response.status_code == 200

    async def test_stale_if_match_is_412_and_changes_nothing(self, client: httpx.AsyncClient) -> None:
        created = (await _create(client, patient())).json()
        url = f"/fhir/Patient/{created['id']}"
        await client.put(url, json={**created, "gender": "female"}, headers=FHIR_JSON)
        response = await client.put(
            url, json={**created, "gender": "male"}, headers={**FHIR_JSON, "If-Match": 'W/"1"'}
        )
        assert response.status_code == 412
        assert response.json()["resourceType"] == "OperationOutcome"
        assert (await client.get(url)).json()["gender"] == "female"

    async def test_malformed_if_match_is_400(self, client: httpx.AsyncClient) -> None:
        created = (await _create(client, patient())).json()
        response = await client.put(
            f"/fhir/Patient/{created['id']}", json=created, headers={**FHIR_JSON, "If-Match": "yesterday"}
        )
        assert response.status_code == 400
        assert response.json()["issue"][0]["expression"] == ["If-Match"]

    async def test_body_id_must_match_url(self, client: httpx.AsyncClient) -> None:
        response = await client.put("/fhir/Patient/a1", json=patient(id="b2"), headers=FHIR_JSON)
        assert response.status_code == 400
        assert response.json()["issue"][0]["expression"] == ["Patient.id"]

    async def test_body_without_id_is_400(self, client: httpx.AsyncClient) -> None:
        response = await client.put("/fhir/Patient/a1", json=patient(), headers=FHIR_JSON)
        assert response.status_code == 400
        assert (await client.get("/fhir/Patient/a1")).status_code == 404


class TestDelete:
    async def test_read_after_delete_is_410_and_history_shows_it(self, client: httpx.AsyncClient) -> None:
        created = (await _create(client, patient())).json()
        url = f"/fhir/Patient/{created['id']}"
        deleted = await client.delete(url)
        assert deleted.status_code == 204
        assert deleted.headers["etag"] == 'W/"2"'
        gone = await client.get(url)
        assert gone.status_code == 410
        assert gone.json()["issue"][0]["code"] == "deleted"
        history = (await client.get(f"{url}/_history")).json()
        assert [e["request"]["method"] for e in history["entry"]] == ["DELETE", "POST"]
        assert "resource" not in history["entry"][0]
        assert (await client.get(f"{url}/_history/2")).status_code == 410
        assert (await client.get(f"{url}/_history/1")).status_code == 200

    async def test_delete_twice_is_idempotent(self, client: httpx.AsyncClient) -> None:
        created = (await _create(client, patient())).json()
        url = f"/fhir/Patient/{created['id']}"
        await client.delete(url)
        again = await client.delete(url, headers={"Prefer": "return=OperationOutcome"})
        assert again.status_code == 200
        assert "already" in again.json()["issue"][0]["diagnostics"]
        history = (await client.get(f"{url}/_history")).json()
        assert history["total"] == 2

    async def test_unknown_is_404(self, client: httpx.AsyncClient) -> None:
        assert (await client.delete("/fhir/Patient/nobody")).status_code == 404

    async def test_update_after_delete_recreates(self, client: httpx.AsyncClient) -> None:
        created = (await _create(client, patient())).json()
        url = f"/fhir/Patient/{created['id']}"
        await client.delete(url)
        response = await client.put(url, json=created, headers=FHIR_JSON)
        assert response.status_code == 201
        assert response.json()["meta"]["versionId"] == "3"

    async def test_stale_if_match_is_412(self, client: httpx.AsyncClient) -> None:
        created = (await _create(client, patient())).json()
        url = f"/fhir/Patient/{created['id']}"
        await client.put(url, json={**created, "gender": "other"}, headers=FHIR_JSON)
        assert (await client.delete(url, headers={"If-Match": 'W/"1"'})).status_code == 412
        assert (await client.get(url)).status_code == 200


class TestHistory:
    async def test_instance_history_newest_first(self, client: httpx.AsyncClient) -> None:
        created = (await _create(client, patient())).json()
        url = f"/fhir/Patient/{created['id']}"
        for gender in ("female", "male", "other"):
            await client.put(url, json={**created, "gender": gender}, headers=FHIR_JSON)
        bundle = (await client.get(f"{url}/_history")).json()
        assert bundle["type"] == "history"
        assert bundle["total"] == 4
        assert [e["resource"]["meta"]["versionId"] for e in bundle["entry"]] == ["4", "3", "2", "1"]
        assert [e["request"]["method"] for e in bundle["entry"]] == ["PUT", "PUT", "PUT", "POST"]
        assert bundle["entry"][0]["response"]["etag"] == 'W/"4"'

    async def test_type_history_pages_to_the_end(self, client: httpx.AsyncClient) -> None:
        ids = {(await _create(client, patient(family=f"F{i}"))).json()["id"] for i in range(7)}
        await _create(client, questionnaire_response())
        seen: list[str] = []
        url: str | None = "/fhir/Patient/_history?_count=3"
        pages = 0
        while url:
            bundle = (await client.get(url)).json()
            pages += 1
            seen += [e["resource"]["id"] for e in bundle.get("entry", [])]
            url = next((link["url"] for link in bundle["link"] if link["relation"] == "next"), None)
        assert pages == 3
        assert len(seen) == 7
        assert set(seen) == ids

    async def test_paging_stable_while_others_write(self, client: httpx.AsyncClient) -> None:
        for i in range(4):
            await _create(client, patient(family=f"F{i}"))
        first = (await client.get("/fhir/Patient/_history?_count=2")).json()
        await _create(client, patient(family="Late"))
        next_url = next(link["url"] for link in first["link"] if link["relation"] == "next")
        second = (await client.get(next_url)).json()
        families = [e["resource"]["name"][0]["family"] for e in first["entry"] + second["entry"]]
        assert families == ["F3", "F2", "F1", "F0"]

    async def test_since_filters(self, client: httpx.AsyncClient) -> None:
        first = (await _create(client, patient())).json()
        bundle = (await client.get("/fhir/_history", params={"_since": first["meta"]["lastUpdated"]})).json()
        assert len(bundle["entry"]) == 1
        future = (await client.get("/fhir/_history", params={"_since": "2999-01-01T00:00:00Z"})).json()
        assert "entry" not in future

    async def test_system_history_spans_types(self, client: httpx.AsyncClient) -> None:
        await _create(client, patient())
        await _create(client, questionnaire_response())
        bundle = (await client.get("/fhir/_history")).json()
        assert [e["resource"]["resourceType"] for e in bundle["entry"]] == [
            "QuestionnaireResponse",
            "Patient",
        ]

    async def test_unknown_instance_is_404(self, client: httpx.AsyncClient) -> None:
        assert (await client.get("/fhir/Patient/nobody/_history")).status_code == 404

    async def test_bad_since_is_400(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/fhir/Patient/_history", params={"_since": "last tuesday"})
        assert response.status_code == 400
        assert response.json()["issue"][0]["expression"] == ["_since"]

    @pytest.mark.parametrize("cursor", ["0", "abc", str(2**63)])
    async def test_a_cursor_the_server_never_handed_out_is_400(
        self, client: httpx.AsyncClient, cursor: str
    ) -> None:
        response = await client.get("/fhir/_history", params={"_cursor": cursor})
        assert response.status_code == 400
        assert response.json()["issue"][0]["expression"] == ["_cursor"]
