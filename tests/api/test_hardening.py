"""CORS from an allow-list, request logs without PHI, no internals in error answers, and request bodies
that PostgreSQL could not store refused before any write."""

import base64
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from service.api.routes import resources as resources_routes
from service.app import create_app
from service.config import Settings
from tests.factories import FHIR_JSON, patient

PORTAL = "https://portal.example.org"


@pytest.fixture
async def cors_app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(
        settings.model_copy(update={"cors_origins": [PORTAL], "load_content_on_start": False})
    )
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def portal(cors_app: FastAPI, token: Callable[..., str]) -> AsyncIterator[httpx.AsyncClient]:
    """A browser client on the portal's origin, with full access."""
    transport = httpx.ASGITransport(app=cors_app)
    headers = {"Origin": PORTAL, "Authorization": f"Bearer {token()}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver", headers=headers) as http:
        yield http


def _preflight(method: str, headers: str = "authorization,content-type") -> dict[str, str]:
    return {
        "Origin": PORTAL,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": headers,
    }


def _protected(response: httpx.Response, *, holds_data: bool = True) -> None:
    assert response.headers.get_list("x-content-type-options") == ["nosniff"], response.headers
    if holds_data:
        assert response.headers.get_list("cache-control") == ["no-store"], response.headers
    else:
        assert "cache-control" not in response.headers


class TestProtectiveHeaders:
    async def test_answers_with_data_are_not_stored_nor_sniffed(self, client: httpx.AsyncClient) -> None:
        created = await client.post("/fhir/Patient", json=patient(), headers=FHIR_JSON)
        answers = [
            created,
            await client.get(f"/fhir/Patient/{created.json()['id']}"),
            await client.get("/fhir/Patient", params={"family": "Rivera"}),
            await client.get("/fhir/metadata"),
            await client.get("/fhir/Patient/nobody"),
            await client.get("/fhir/NoSuchType"),
            await client.post("/fhir/Patient", content=b"{", headers=FHIR_JSON),
            await client.get("/ipt/treatment-plans/nope"),
            await client.get("/fhir/Patient", headers={"Authorization": ""}),
        ]
        assert [a.status_code for a in answers] == [201, 200, 200, 200, 404, 404, 400, 404, 401]
        for answer in answers:
            _protected(answer)

    async def test_a_server_error_too(
        self, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        async def create_failing(engine: AsyncEngine, name: str, content: dict[str, Any]) -> None:
            raise RuntimeError("failed")

        monkeypatch.setattr(resources_routes, "create_resource", create_failing)
        response = await client.post("/fhir/Patient", json=patient(), headers=FHIR_JSON)

        assert response.status_code == 500
        _protected(response)

    async def test_other_answers_are_not_sniffed(self, client: httpx.AsyncClient) -> None:
        _protected(await client.get("/health"), holds_data=False)
        _protected(await client.get("/openapi.json"), holds_data=False)


class TestCors:
    """The CapabilityStatement's `rest.security.cors` says whether a browser of another origin may call the
    API, and the preflights agree."""

    async def test_without_origins_there_is_no_cors(self, client: httpx.AsyncClient) -> None:
        statement = (await client.get("/fhir/metadata")).json()
        preflight = await client.options("/fhir/Patient", headers=_preflight("POST"))

        assert statement["rest"][0]["security"]["cors"] is False
        assert preflight.status_code == 405
        assert "access-control-allow-origin" not in preflight.headers

    async def test_with_origins_the_statement_says_cors(self, portal: httpx.AsyncClient) -> None:
        statement = (await portal.get("/fhir/metadata")).json()
        assert statement["rest"][0]["security"]["cors"] is True

    async def test_allowed_origin_gets_credentials_not_wildcard(self, portal: httpx.AsyncClient) -> None:
        for path, method in (("/fhir/Patient", "POST"), ("/fhir/Patient/p1", "PUT"), ("/fhir", "POST")):
            preflight = await portal.options(
                path, headers=_preflight(method, "authorization,content-type,if-match")
            )

            assert preflight.status_code == 200, (path, preflight.text)
            assert preflight.headers["access-control-allow-origin"] == PORTAL
            assert preflight.headers["access-control-allow-credentials"] == "true"
            assert method in preflight.headers["access-control-allow-methods"]
            assert "If-Match" in preflight.headers["access-control-allow-headers"]
            _protected(preflight)

    async def test_an_allowed_origin_reads_the_headers_it_needs(self, portal: httpx.AsyncClient) -> None:
        created = await portal.post("/fhir/Patient", json=patient(), headers=FHIR_JSON)

        assert created.status_code == 201
        assert created.headers["access-control-allow-origin"] == PORTAL
        exposed = created.headers["access-control-expose-headers"]
        assert {"ETag", "Location", "Last-Modified"} <= {name.strip() for name in exposed.split(",")}

    async def test_other_origin_is_not_allowed(self, cors_app: FastAPI) -> None:
        transport = httpx.ASGITransport(app=cors_app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            preflight = await client.options(
                "/fhir/Patient",
                headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
            )
        assert "access-control-allow-origin" not in preflight.headers


class TestLogs:
    async def test_request_log_has_path_but_no_query_values(
        self, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
    ) -> None:
        with caplog.at_level(logging.INFO, logger="ipt_fhir.access"):
            await client.get("/fhir/Patient", params={"family": "Sensitive-Surname"})
            await client.post("/fhir/Patient", json=patient(family="Another-Surname"), headers=FHIR_JSON)
        lines = [r.getMessage() for r in caplog.records if r.name == "ipt_fhir.access"]
        assert any(line.startswith("GET /fhir/Patient 200") for line in lines)
        assert not any("Surname" in line for line in lines)


async def _audit_events(engine: AsyncEngine) -> list[dict[str, Any]]:
    async with engine.connect() as connection:
        statement = text(
            "SELECT content FROM resources WHERE resource_type = 'AuditEvent' ORDER BY last_updated"
        )
        return list((await connection.execute(statement)).scalars())


class TestNoDataInLogs:
    async def test_the_engine_hides_bound_values(self, engine: AsyncEngine) -> None:
        with pytest.raises(DBAPIError) as raised:
            async with engine.connect() as connection:
                await connection.execute(
                    text("SELECT CAST(:v AS integer) + :w"), {"v": "x", "w": "Sensitive"}
                )
        assert "Sensitive" not in str(raised.value)

    async def test_a_database_error_is_logged_without_its_message(
        self,
        client: httpx.AsyncClient,
        engine: AsyncEngine,
        flush_audit: Callable[[], Awaitable[bool]],
        caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        async def create_failing(engine: AsyncEngine, name: str, content: dict[str, Any]) -> None:
            # PostgreSQL quotes a value it refuses in its message: `invalid input syntax for type integer`.
            async with engine.connect() as connection:
                await connection.execute(
                    text("SELECT CAST(CAST(:v AS text) AS integer)"), {"v": content["name"][0]["family"]}
                )

        monkeypatch.setattr(resources_routes, "create_resource", create_failing)
        with caplog.at_level(logging.DEBUG):
            response = await client.post(
                "/fhir/Patient", json=patient(family="Sensitive-Surname"), headers=FHIR_JSON
            )

        assert response.status_code == 500
        assert response.json()["issue"][0]["code"] == "exception"
        assert "Sensitive" not in response.text
        assert "InvalidTextRepresentationError" in caplog.text
        assert "SQLSTATE 22P02" in caplog.text
        assert "Sensitive" not in caplog.text
        # The 500 is answered inside the middleware stack, so the audit trail records it.
        await flush_audit()
        [event] = await _audit_events(engine)
        assert event["outcome"] == "8"
        assert event["outcomeDesc"] == "HTTP 500"

    async def test_the_server_logs_exceptions_without_their_messages(
        self, app: FastAPI, caplog: pytest.LogCaptureFixture
    ) -> None:
        try:
            surname = "Sensitive-" + "Surname"
            raise ValueError(surname)
        except ValueError:
            with caplog.at_level(logging.ERROR, logger="uvicorn.error"):
                logging.getLogger("uvicorn.error").exception("Exception in ASGI application")
        with caplog.at_level(logging.INFO, logger="uvicorn.access"):
            logging.getLogger("uvicorn.access").info("%s %s", "GET", "/fhir/Patient?name=Sensitive-Surname")

        assert "Exception in ASGI application" in caplog.text
        assert "ValueError" in caplog.text
        assert "Sensitive" not in caplog.text

    async def test_control_characters_in_a_logged_path_are_escaped(
        self, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
    ) -> None:
        with caplog.at_level(logging.INFO, logger="ipt_fhir.access"):
            await client.get("/fhir/Patient/a%0AGET%20/forged%20200")
        lines = [r.getMessage() for r in caplog.records if r.name == "ipt_fhir.access"]
        [line] = lines
        assert line.startswith("GET /fhir/Patient/a\\nGET /forged 200 404 ")


class TestErrorAnswers:
    async def test_no_sql_or_trace_in_a_refusal(self, client: httpx.AsyncClient) -> None:
        response = await client.post("/fhir/Patient", content=b"{'not': json}", headers=FHIR_JSON)
        text = response.text.lower()
        assert response.status_code == 400
        assert "traceback" not in text
        assert "select" not in text
        assert "sqlalchemy" not in text


async def _stored_versions(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        statement = text("SELECT count(*) FROM resource_versions WHERE resource_type <> 'AuditEvent'")
        return int((await connection.execute(statement)).scalar_one())


def _refused_for_nul(response: httpx.Response, expression: str) -> None:
    assert response.status_code == 400, response.text
    issue: dict[str, Any] = response.json()["issue"][0]
    assert issue["expression"] == [expression]
    assert "NUL" in issue["diagnostics"]


class TestNulInBodies:
    """PostgreSQL's text and jsonb cannot hold NUL: a body carrying one is a 400 naming the element."""

    async def test_create_and_update(self, client: httpx.AsyncClient, engine: AsyncEngine) -> None:
        body = orjson.dumps(patient(family="a\x00b"))
        assert b"\\u0000" in body

        created = await client.post("/fhir/Patient", content=body, headers=FHIR_JSON)
        updated = await client.put(
            "/fhir/Patient/p1", content=orjson.dumps(patient(id="p1", family="a\x00b")), headers=FHIR_JSON
        )

        _refused_for_nul(created, "Patient.name[0].family")
        _refused_for_nul(updated, "Patient.name[0].family")
        assert await _stored_versions(engine) == 0

    async def test_a_member_name(self, client: httpx.AsyncClient, engine: AsyncEngine) -> None:
        body = orjson.dumps({**patient(), "gender\x00": "male"})
        response = await client.post("/fhir/Patient", content=body, headers=FHIR_JSON)
        _refused_for_nul(response, "Patient.gender\\u0000")
        assert await _stored_versions(engine) == 0

    async def test_an_escaped_backslash_before_u0000_is_plain_text(self, client: httpx.AsyncClient) -> None:
        response = await client.post("/fhir/Patient", json=patient(family="a\\u0000b"), headers=FHIR_JSON)
        assert response.status_code == 201, response.text
        assert response.json()["name"][0]["family"] == "a\\u0000b"

    async def test_patch_documents(self, client: httpx.AsyncClient, engine: AsyncEngine) -> None:
        await client.put("/fhir/Patient/p1", json=patient(id="p1"), headers=FHIR_JSON)
        json_patch = [{"op": "replace", "path": "/name/0/family", "value": "a\x00b"}]
        fhirpath_patch = {
            "resourceType": "Parameters",
            "parameter": [
                {
                    "name": "operation",
                    "part": [
                        {"name": "type", "valueCode": "add"},
                        {"name": "path", "valueString": "Patient"},
                        {"name": "name", "valueString": "gender"},
                        {"name": "value", "valueCode": "ma\x00le"},
                    ],
                }
            ],
        }

        first = await client.patch(
            "/fhir/Patient/p1",
            content=orjson.dumps(json_patch),
            headers={"Content-Type": "application/json-patch+json"},
        )
        second = await client.patch(
            "/fhir/Patient/p1", content=orjson.dumps(fhirpath_patch), headers=FHIR_JSON
        )

        _refused_for_nul(first, "JsonPatch[0].value")
        _refused_for_nul(second, "Parameters.parameter[0].part[3].valueCode")
        assert (await client.get("/fhir/Patient/p1")).headers["etag"] == 'W/"1"'

    async def test_bundles(self, client: httpx.AsyncClient, engine: AsyncEngine) -> None:
        await client.put("/fhir/Patient/p1", json=patient(id="p1"), headers=FHIR_JSON)
        created = {"resource": patient(family="a\x00b"), "request": {"method": "POST", "url": "Patient"}}
        json_patch = orjson.dumps([{"op": "add", "path": "/gender", "value": "ma\x00le"}])
        patched = {
            "resource": {
                "resourceType": "Binary",
                "contentType": "application/json-patch+json",
                "data": base64.b64encode(json_patch).decode(),
            },
            "request": {"method": "PATCH", "url": "Patient/p1"},
        }
        for kind in ("transaction", "batch"):
            bundle = {"resourceType": "Bundle", "type": kind, "entry": [created]}
            response = await client.post("/fhir", content=orjson.dumps(bundle), headers=FHIR_JSON)
            _refused_for_nul(response, "Bundle.entry[0].resource.name[0].family")

        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [patched]}
        response = await client.post("/fhir", content=orjson.dumps(bundle), headers=FHIR_JSON)

        _refused_for_nul(response, "Bundle.entry[0].resource.data[0].value")
        assert await _stored_versions(engine) == 1

    async def test_operation_parameters(self, client: httpx.AsyncClient) -> None:
        parameters = {
            "resourceType": "Parameters",
            "parameter": [{"name": "resource", "resource": patient(family="a\x00b")}],
        }
        response = await client.post(
            "/fhir/Patient/$validate", content=orjson.dumps(parameters), headers=FHIR_JSON
        )
        _refused_for_nul(response, "Parameters.parameter[0].resource.name[0].family")

    async def test_treatment_plan_document(self, client: httpx.AsyncClient, engine: AsyncEngine) -> None:
        response = await client.post(
            "/ipt/treatment-plans",
            content=orjson.dumps({"patient": "a\x00b"}),
            headers={"Content-Type": "application/json"},
        )
        _refused_for_nul(response, "TreatmentPlan.patient")
        assert await _stored_versions(engine) == 0


def _response_naming(references: list[str]) -> dict[str, Any]:
    return {
        "resourceType": "QuestionnaireResponse",
        "status": "completed",
        "item": [
            {"linkId": f"q{n}", "answer": [{"valueReference": {"reference": reference}}]}
            for n, reference in enumerate(references)
        ],
    }


@pytest.mark.slow
class TestHugeRequests:
    """A body within the size limit is answered, however many references it holds: never a 500."""

    async def test_twenty_thousand_references(self, client: httpx.AsyncClient, engine: AsyncEngine) -> None:
        await client.put("/fhir/Patient/p0", json=patient(id="p0"), headers=FHIR_JSON)
        sent = _response_naming([f"Patient/p{n}" for n in range(20_000)])

        checked = await client.post("/fhir/QuestionnaireResponse/$validate", json=sent, headers=FHIR_JSON)
        created = await client.post("/fhir/QuestionnaireResponse", json=sent, headers=FHIR_JSON)

        for response in (checked, created):
            assert response.status_code < 500, response.text[:500]
            assert response.json()["resourceType"] == "OperationOutcome"
        assert created.status_code == 422
        missing = [i for i in created.json()["issue"] if i["code"] == "not-found"]
        assert len(missing) == 19_999
        assert not any("Patient/p0," in i["diagnostics"] for i in missing)
        assert await _stored_versions(engine) == 1

    async def test_a_search_of_too_many_values(self, client: httpx.AsyncClient) -> None:
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        ids = [f"p{n}" for n in range(40_000)]

        allowed = await client.post(
            "/fhir/Patient/_search", content=urlencode({"_id": ",".join(ids[:1000])}), headers=form
        )
        too_many = [
            await client.post(
                "/fhir/Patient/_search", content=urlencode({"_id": ",".join(ids)}), headers=form
            ),
            await client.post(
                "/fhir/Patient/_search", content=urlencode([("_id", i) for i in ids]), headers=form
            ),
            await client.post(
                "/fhir/Patient",
                json=patient(),
                headers={**FHIR_JSON, "If-None-Exist": f"_id={','.join(ids)}"},
            ),
        ]

        assert allowed.status_code == 200, allowed.text[:500]
        for response, where in zip(too_many, ("_id", "_id", "If-None-Exist"), strict=True):
            assert response.status_code == 400, response.text[:500]
            [issue] = response.json()["issue"]
            assert issue["code"] == "too-costly"
            assert issue["expression"] == [where]
            assert "more than 1000 values" in issue["diagnostics"]

    async def test_twenty_thousand_references_that_exist(self, client: httpx.AsyncClient) -> None:
        await client.put("/fhir/Patient/p0", json=patient(id="p0"), headers=FHIR_JSON)
        sent = _response_naming(["Patient/p0"] * 20_000)

        created = await client.post("/fhir/QuestionnaireResponse", json=sent, headers=FHIR_JSON)

        assert created.status_code == 201, created.text[:500]


class TestAuditOfOddRequests:
    """A request refused for what its path or token holds is recorded all the same."""

    @pytest.fixture(autouse=True)
    def _flush(self, flush_audit: Callable[[], Awaitable[bool]]) -> None:
        self.flush_audit = flush_audit

    async def _events(self, client: httpx.AsyncClient, token: Callable[..., str]) -> list[dict[str, Any]]:
        # The refusals' events are buffered: written first, as the flush interval would.
        await self.flush_audit()
        auditor = {"Authorization": f"Bearer {token('system/AuditEvent.rs')}"}
        found = await client.get("/fhir/AuditEvent", params={"_sort": "date"}, headers=auditor)
        assert found.status_code == 200, found.text
        return [entry["resource"] for entry in found.json().get("entry", [])]

    async def test_a_path_holding_nul(self, client: httpx.AsyncClient, token: Callable[..., str]) -> None:
        response = await client.get("/fhir/CarePlan/a%00b")

        assert response.status_code == 400
        [event] = await self._events(client, token)
        assert event["outcomeDesc"] == "HTTP 400"
        assert event["entity"] == [{"what": {"reference": "CarePlan/a\\x00b"}}]

    async def test_a_token_whose_claims_hold_control_characters(
        self, anonymous_client: httpx.AsyncClient, token: Callable[..., str]
    ) -> None:
        odd = token(subject="therapist\x00\n7", client_id="ehr\ud8001")
        response = await anonymous_client.get(
            "/fhir/Patient", params={"name": "x\x01"}, headers={"Authorization": f"Bearer {odd}"}
        )

        assert response.status_code == 200, response.text
        [event] = await self._events(anonymous_client, token)
        assert event["agent"][0]["who"]["identifier"]["value"] == "therapist\\x00\\n7"
        assert event["agent"][0]["altId"] == "ehr\\ud8001"

    async def test_a_patient_claim_that_is_no_id_is_refused(
        self, anonymous_client: httpx.AsyncClient, token: Callable[..., str]
    ) -> None:
        for patient_id in ("a\x00b", "a\ud800b", "Patient/p1"):
            odd = token("patient/*.rs", patient=patient_id)
            response = await anonymous_client.get(
                "/fhir/_history", headers={"Authorization": f"Bearer {odd}"}
            )

            assert response.status_code == 401, response.text
            assert "patient claim" in response.json()["issue"][0]["diagnostics"]
        assert [event["outcomeDesc"] for event in await self._events(anonymous_client, token)] == [
            "HTTP 401"
        ] * 3
