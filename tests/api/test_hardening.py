"""CORS from an allow-list, request logs without PHI, and no internals in error answers."""

import logging

import httpx
import pytest
from fastapi import FastAPI

from service.app import create_app
from service.config import Settings
from tests.factories import FHIR_JSON, patient

PORTAL = "https://portal.example.org"


@pytest.fixture
async def cors_app(settings: Settings) -> FastAPI:
    return create_app(settings.model_copy(update={"cors_origins": [PORTAL], "load_content_on_start": False}))


class TestCors:
    async def test_allowed_origin_gets_credentials_not_wildcard(self, cors_app: FastAPI) -> None:
        transport = httpx.ASGITransport(app=cors_app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            preflight = await client.options(
                "/fhir/Patient",
                headers={
                    "Origin": PORTAL,
                    "Access-Control-Request-Method": "POST",
                    "Access-Control-Request-Headers": "authorization,content-type",
                },
            )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == PORTAL
        assert preflight.headers["access-control-allow-credentials"] == "true"

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


class TestErrorAnswers:
    async def test_no_sql_or_trace_in_a_refusal(self, client: httpx.AsyncClient) -> None:
        response = await client.post("/fhir/Patient", content=b"{'not': json}", headers=FHIR_JSON)
        text = response.text.lower()
        assert response.status_code == 400
        assert "traceback" not in text
        assert "select" not in text
        assert "sqlalchemy" not in text
