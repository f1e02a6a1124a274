"""A database that is away or overloaded is a 503 with `Retry-After`, never a 500; a write that loses a race
at the database is a 409. Both are OperationOutcomes."""

import socket
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from service.api.security import mint_token
from service.app import create_app
from service.config import Settings
from service.errors import Conflict, ServiceUnavailable
from service.storage.db import create_engine
from service.storage.faults import database_fault
from tests.factories import FHIR_JSON, patient


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port  # closed again: nothing listens there


@pytest.fixture
async def database_away(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The service, started on its database, which then goes away."""
    application: FastAPI = create_app(settings)
    async with application.router.lifespan_context(application):
        working: AsyncEngine = application.state.engine
        application.state.engine = create_engine(f"postgresql://ipt@127.0.0.1:{_closed_port()}/gone")
        try:
            transport = httpx.ASGITransport(app=application)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
                yield client
        finally:
            await application.state.engine.dispose()
            application.state.engine = working


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/fhir/Patient/p1", None),
        ("GET", "/fhir/Patient?name=Rivera", None),
        ("POST", "/fhir/Patient", patient()),
        ("PUT", "/fhir/Patient/p1", patient(id="p1")),
        ("GET", "/fhir/_history", None),
        ("GET", "/health", None),
    ],
)
async def test_a_database_away_is_503_with_retry_after(
    database_away: httpx.AsyncClient, settings: Settings, method: str, path: str, body: object
) -> None:
    headers = {"Authorization": f"Bearer {mint_token(settings, scope='system/*.cruds')}", **FHIR_JSON}
    response = await database_away.request(method, path, json=body, headers=headers)
    assert response.status_code == 503, response.text
    assert int(response.headers["retry-after"]) > 0
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == "transient"


async def _error_of(engine: AsyncEngine, statement: str) -> DBAPIError:
    async with engine.connect() as connection:
        with pytest.raises(DBAPIError) as caught:
            await connection.execute(text(statement))
    return caught.value


async def test_a_unique_violation_is_a_conflict(engine: AsyncEngine) -> None:
    error = await _error_of(engine, "SELECT 1/0")
    assert database_fault(error) is None  # a division by zero is a bug, not a client's fault
    async with engine.begin() as connection:
        await connection.execute(text("CREATE TEMP TABLE once (k int PRIMARY KEY) ON COMMIT DROP"))
        await connection.execute(text("INSERT INTO once VALUES (1)"))
        with pytest.raises(DBAPIError) as caught:
            await connection.execute(text("INSERT INTO once VALUES (1)"))
    fault = database_fault(caught.value)
    assert isinstance(fault, Conflict)
    assert fault.status_code == 409


async def test_a_server_shutting_down_is_unavailable(engine: AsyncEngine) -> None:
    error = await _error_of(engine, "DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = '57P01'; END $$")
    fault = database_fault(error)
    assert isinstance(fault, ServiceUnavailable)
    assert fault.headers["Retry-After"]
