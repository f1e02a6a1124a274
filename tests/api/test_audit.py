"""Every access to clinical data leaves an AuditEvent; the trail is append-only and needs its own scope.

Spec: https://hl7.org/fhir/R4/auditevent.html
"""

import asyncio
import base64
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from service.api import audit as audit_api
from service.api.audit import AuditBuffer
from service.app import create_app
from service.config import Settings
from service.interactions.audit import write_audit_events
from service.storage import repository as repository_module
from service.storage.repository import ResourceRepository
from service.storage.tables import resource_versions
from tests.conftest import stored_audit_events
from tests.factories import FHIR_JSON, patient

Token = Callable[..., str]
Events = Callable[[], Awaitable[list[dict[str, object]]]]


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **FHIR_JSON}


@pytest.fixture
def events(engine: AsyncEngine, flush_audit: Callable[[], Awaitable[bool]]) -> Events:
    """The AuditEvents of the requests so far, the buffered ones written first."""

    async def written() -> list[dict[str, object]]:
        assert await flush_audit()
        return await stored_audit_events(engine)

    return written


def _subtype(event: dict[str, object]) -> str:
    return event["subtype"][0]["code"]  # type: ignore[index,no-any-return]


class TestRecording:
    async def test_create_and_read_are_recorded_with_who_and_what(
        self, anonymous_client: httpx.AsyncClient, token: Token, events: Events
    ) -> None:
        writer = token("user/Patient.cruds", subject="therapist-7", client_id="ehr-1")
        created = await anonymous_client.post("/fhir/Patient", json=patient(), headers=_auth(writer))
        patient_id = created.json()["id"]
        await anonymous_client.get(f"/fhir/Patient/{patient_id}", headers=_auth(writer))
        create_event, read_event = await events()
        assert _subtype(create_event) == "create"
        assert create_event["action"] == "C"
        assert create_event["entity"] == [{"what": {"reference": f"Patient/{patient_id}"}}]
        assert _subtype(read_event) == "read"
        assert read_event["outcome"] == "0"
        agent = read_event["agent"][0]  # type: ignore[index]
        assert agent["who"]["identifier"]["value"] == "therapist-7"
        assert agent["altId"] == "ehr-1"
        assert agent["network"]["address"]

    async def test_refused_requests_are_recorded(
        self, anonymous_client: httpx.AsyncClient, token: Token, events: Events
    ) -> None:
        assert (await anonymous_client.get("/fhir/Patient/a")).status_code == 401
        assert (
            await anonymous_client.get("/fhir/Patient/a", headers=_auth(token("user/Goal.rs")))
        ).status_code == 403
        unauthenticated, forbidden = await events()
        assert unauthenticated["outcome"] == "4"
        assert unauthenticated["agent"][0]["who"]["identifier"]["value"] == "anonymous"  # type: ignore[index]
        assert forbidden["outcome"] == "4"
        assert forbidden["outcomeDesc"] == "HTTP 403"

    async def test_search_keeps_its_query(
        self, anonymous_client: httpx.AsyncClient, token: Token, events: Events
    ) -> None:
        await anonymous_client.get("/fhir/Patient", params={"family": "Rivera"}, headers=_auth(token()))
        (event,) = await events()
        assert _subtype(event) == "search-type"
        query = event["entity"][-1]["query"]  # type: ignore[index]
        assert base64.b64decode(query).decode() == "family=Rivera"

    async def test_shared_content_reads_are_not_audited(
        self, anonymous_client: httpx.AsyncClient, token: Token, events: Events
    ) -> None:
        await anonymous_client.get("/fhir/Questionnaire/unknown", headers=_auth(token()))
        await anonymous_client.get("/fhir/metadata")
        assert await events() == []


class TestAuditTrailAccess:
    async def test_searchable_with_an_audit_scope_only(
        self, anonymous_client: httpx.AsyncClient, token: Token
    ) -> None:
        await anonymous_client.put("/fhir/Patient/a", json=patient(id="a"), headers=_auth(token()))
        auditor = token("system/AuditEvent.rs")
        bundle = await anonymous_client.get(
            "/fhir/AuditEvent", params={"entity": "Patient/a"}, headers=_auth(auditor)
        )
        assert bundle.status_code == 200
        entries = bundle.json()["entry"]
        assert [e["resource"]["subtype"][0]["code"] for e in entries] == ["update"]
        event_id = entries[0]["resource"]["id"]
        assert (
            await anonymous_client.get(f"/fhir/AuditEvent/{event_id}", headers=_auth(auditor))
        ).status_code == 200
        everything = token("system/*.cruds")
        assert (await anonymous_client.get("/fhir/AuditEvent", headers=_auth(everything))).status_code == 403

    async def test_no_api_writes_audit_events(
        self, anonymous_client: httpx.AsyncClient, token: Token, events: Events
    ) -> None:
        auditor = token("system/AuditEvent.cruds")
        event = {"resourceType": "AuditEvent"}
        assert (
            await anonymous_client.post("/fhir/AuditEvent", json=event, headers=_auth(auditor))
        ).status_code == 405
        assert (
            await anonymous_client.put("/fhir/AuditEvent/x", json=event, headers=_auth(auditor))
        ).status_code == 405
        assert (
            await anonymous_client.delete("/fhir/AuditEvent/x", headers=_auth(auditor))
        ).status_code == 405
        assert (
            await anonymous_client.patch(
                "/fhir/AuditEvent/x",
                json=[{"op": "replace", "path": "/outcome", "value": "0"}],
                headers={**_auth(auditor), "Content-Type": "application/json-patch+json"},
            )
        ).status_code == 405
        bundle = {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [{"resource": event, "request": {"method": "POST", "url": "AuditEvent"}}],
        }
        assert (await anonymous_client.post("/fhir", json=bundle, headers=_auth(token()))).status_code == 403
        batch = {**bundle, "type": "batch"}
        assert (await anonymous_client.post("/fhir", json=batch, headers=_auth(token()))).status_code == 403
        # Only the records of these requests: none of them came from a client's body.
        assert all(
            event.get("source", {}).get("observer") == {"display": "ipt-fhir"} for event in await events()
        )


def _bundle_entry(
    method: str, url: str, resource: dict[str, Any] | None = None, **request: str
) -> dict[str, Any]:
    entry: dict[str, Any] = {"request": {"method": method, "url": url, **request}}
    if resource is not None:
        entry["resource"] = resource
    return entry


class TestWritesInTheirTransaction:
    """A write's AuditEvent is committed with the write: none without it, none for a write rolled back."""

    async def test_a_create_is_recorded_before_its_answer_without_the_buffer(
        self, client: httpx.AsyncClient, app: FastAPI, engine: AsyncEngine
    ) -> None:
        created = await client.post("/fhir/Patient", json=patient(), headers=FHIR_JSON)
        assert created.status_code == 201
        # Nothing flushed: the event is in the database because the write's transaction committed it.
        assert len(app.state.audit_buffer) == 0
        [event] = await stored_audit_events(engine)
        assert _subtype(event) == "create"
        assert event["outcomeDesc"] == "HTTP 201"
        assert event["entity"] == [{"what": {"reference": f"Patient/{created.json()['id']}"}}]

    async def test_each_write_interaction_names_its_status(
        self, client: httpx.AsyncClient, events: Events
    ) -> None:
        assert (
            await client.put("/fhir/Patient/p", json=patient(id="p"), headers=FHIR_JSON)
        ).status_code == 201
        changed = patient(id="p", family="Other")
        assert (await client.put("/fhir/Patient/p", json=changed, headers=FHIR_JSON)).status_code == 200
        # The same content again writes nothing: recorded as a request, with the answer it had.
        assert (await client.put("/fhir/Patient/p", json=changed, headers=FHIR_JSON)).status_code == 200
        patched = await client.patch(
            "/fhir/Patient/p",
            json=[{"op": "add", "path": "/gender", "value": "female"}],
            headers={"Content-Type": "application/json-patch+json"},
        )
        assert patched.status_code == 200, patched.text
        assert (await client.delete("/fhir/Patient/p")).status_code == 204
        recorded = [
            (_subtype(e), e["outcomeDesc"], e["entity"][0]["what"]["reference"]) for e in await events()
        ]  # type: ignore[index]
        # The unchanged PUT's event came through the buffer, after the others were committed.
        assert sorted(recorded) == sorted(
            [
                ("update", "HTTP 201", "Patient/p"),
                ("update", "HTTP 200", "Patient/p"),
                ("update", "HTTP 200", "Patient/p"),
                ("patch", "HTTP 200", "Patient/p"),
                ("delete", "HTTP 204", "Patient/p"),
            ]
        )

    async def test_a_transaction_records_one_event_naming_every_resource_it_wrote(
        self, client: httpx.AsyncClient, events: Events
    ) -> None:
        bundle = {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {**_bundle_entry("POST", "Patient", patient()), "fullUrl": "urn:uuid:1"},
                _bundle_entry("PUT", "Patient/b", patient(id="b")),
            ],
        }
        response = await client.post("/fhir", json=bundle, headers=FHIR_JSON)
        assert response.status_code == 200, response.text
        created = response.json()["entry"][0]["response"]["location"].split("/_history")[0]
        [event] = await events()
        assert _subtype(event) == "transaction"
        assert event["outcome"] == "0"
        assert {e["what"]["reference"] for e in event["entity"]} == {created, "Patient/b"}  # type: ignore[index,union-attr]

    async def test_a_transaction_failing_after_a_write_leaves_only_its_failure(
        self, client: httpx.AsyncClient, events: Events
    ) -> None:
        assert (
            await client.put("/fhir/Patient/b", json=patient(id="b"), headers=FHIR_JSON)
        ).status_code == 201
        # The POST is written first; the PUT's If-Match then fails, and the whole transaction rolls back.
        bundle = {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {**_bundle_entry("POST", "Patient", patient(family="Never")), "fullUrl": "urn:uuid:1"},
                _bundle_entry("PUT", "Patient/b", patient(id="b", family="Changed"), ifMatch='W/"9"'),
            ],
        }
        response = await client.post("/fhir", json=bundle, headers=FHIR_JSON)
        assert response.status_code == 412, response.text
        assert (await client.get("/fhir/Patient", params={"family": "Never"})).json()["total"] == 0
        transactions = [e for e in await events() if _subtype(e) == "transaction"]
        assert [(e["outcome"], e["outcomeDesc"]) for e in transactions] == [("4", "HTTP 412")]

    async def test_a_write_whose_event_cannot_be_stored_is_rolled_back(
        self,
        client: httpx.AsyncClient,
        engine: AsyncEngine,
        events: Events,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        # The write's event takes an id already used: its insert fails inside the write's transaction.
        async with engine.begin() as connection:
            await ResourceRepository(connection).create(
                "AuditEvent", {"resourceType": "AuditEvent"}, resource_id="taken"
            )
        monkeypatch.setattr(repository_module, "new_id", lambda: "taken")

        response = await client.put("/fhir/Patient/p", json=patient(id="p"), headers=FHIR_JSON)

        # The clash is a unique violation, which the service answers as a lost race.
        assert response.status_code == 409
        assert response.json()["resourceType"] == "OperationOutcome"
        monkeypatch.undo()
        assert (await client.get("/fhir/Patient/p")).status_code == 404
        recorded = [(e.get("subtype") and _subtype(e), e.get("outcomeDesc")) for e in await events()]
        assert recorded == [(None, None), ("update", "HTTP 409"), ("read", "HTTP 404")]


class TestBundleReads:
    """What a Bundle's reading entries return is named in the audit trail, also when other entries write
    (the write events name only what was written)."""

    @pytest.mark.parametrize("kind", ["batch", "transaction"])
    @pytest.mark.parametrize("method", ["GET", "HEAD"])
    async def test_a_read_beside_a_write_is_recorded(
        self, client: httpx.AsyncClient, events: Events, kind: str, method: str
    ) -> None:
        assert (
            await client.put("/fhir/Patient/p1", json=patient(id="p1"), headers=FHIR_JSON)
        ).status_code == 201
        before = len(await events())
        bundle = {
            "resourceType": "Bundle",
            "type": kind,
            "entry": [
                {"request": {"method": method, "url": "Patient/p1"}},
                {"resource": patient(), "request": {"method": "POST", "url": "Patient"}},
            ],
        }
        answered = await client.post("/fhir", json=bundle, headers=FHIR_JSON)
        assert answered.status_code == 200, answered.text
        created = answered.json()["entry"][1]["response"]["location"].split("/_history")[0]
        recorded = [
            (_subtype(e), [entity["what"]["reference"] for entity in e["entity"]])  # type: ignore[index]
            for e in (await events())[before:]
        ]
        assert ("transaction", ["Patient/p1"]) in recorded
        assert any(
            created.endswith(references[0]) for _, references in recorded if references != ["Patient/p1"]
        )

    async def test_a_reading_batch_names_what_it_read(
        self, client: httpx.AsyncClient, events: Events
    ) -> None:
        for id_ in ("p1", "p2"):
            assert (
                await client.put(f"/fhir/Patient/{id_}", json=patient(id=id_), headers=FHIR_JSON)
            ).status_code == 201
        before = len(await events())
        bundle = {
            "resourceType": "Bundle",
            "type": "batch",
            "entry": [
                {"request": {"method": "GET", "url": f"Patient/{id_}"}} for id_ in ("p1", "p2", "nobody")
            ],
        }
        assert (await client.post("/fhir", json=bundle, headers=FHIR_JSON)).status_code == 200
        [event] = (await events())[before:]
        assert [e["what"]["reference"] for e in event["entity"]] == ["Patient/p1", "Patient/p2"]  # type: ignore[index]


class TestBuffer:
    """Reads, searches and refusals are recorded through a buffer written every interval."""

    async def test_a_read_reaches_the_database_on_flush(
        self, client: httpx.AsyncClient, app: FastAPI, engine: AsyncEngine, events: Events
    ) -> None:
        await client.get("/fhir/Patient/unknown")
        assert len(app.state.audit_buffer) == 1
        [event] = await events()
        assert (_subtype(event), event["outcomeDesc"]) == ("read", "HTTP 404")
        assert len(app.state.audit_buffer) == 0

    async def test_a_read_reaches_the_database_within_the_interval_without_a_flush(
        self, client: httpx.AsyncClient, app: FastAPI, engine: AsyncEngine
    ) -> None:
        interval = app.state.settings.audit_flush_interval
        answered = time.monotonic()
        await client.get("/fhir/Patient/unknown")
        while not await stored_audit_events(engine):
            assert time.monotonic() - answered < interval + 1.0, "not written within the interval"
            await asyncio.sleep(0.01)

    async def test_events_older_than_the_interval_are_on_disk(
        self,
        client: httpx.AsyncClient,
        app: FastAPI,
        engine: AsyncEngine,
        flush_audit: Callable[[], Awaitable[bool]],
    ) -> None:
        """What a crash can lose, measured: under a steady stream of reads, how long after its request each
        event is first seen committed by another connection."""
        interval = app.state.settings.audit_flush_interval
        first_seen: dict[str, float] = {}
        done = asyncio.Event()

        async def watch() -> None:
            while not done.is_set():
                async with engine.connect() as connection:
                    rows = await connection.execute(
                        select(resource_versions.c.id).where(
                            resource_versions.c.resource_type == "AuditEvent"
                        )
                    )
                    now = time.time()
                    for event_id in rows.scalars():
                        first_seen.setdefault(event_id, now)
                await asyncio.sleep(0.01)

        watcher = asyncio.create_task(watch())
        until = time.monotonic() + 3 * interval + 0.5
        answered = 0
        while time.monotonic() < until:
            assert (await client.get("/fhir/Patient/unknown")).status_code == 404
            answered += 1
        await asyncio.sleep(interval + 0.3)
        done.set()
        await watcher
        await flush_audit()
        stored = await _stored_with_ids(engine)
        assert len(stored) == answered
        lags = [
            first_seen[event_id] - _timestamp(event)
            for event_id, event in stored.items()
            if event_id in first_seen
        ]
        assert len(lags) == answered, "every event was on disk before the test flushed"
        # The interval, plus one write and the watcher's own polling.
        assert max(lags) < interval + 0.25, max(lags)

    async def test_a_graceful_shutdown_writes_what_is_pending(
        self, anonymous_client: httpx.AsyncClient, settings: Settings, engine: AsyncEngine, token: Token
    ) -> None:
        slow = settings.model_copy(update={"audit_flush_interval": 3600.0, "load_content_on_start": False})
        application = create_app(slow)
        async with application.router.lifespan_context(application):
            transport = httpx.ASGITransport(app=application)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
                response = await http.get("/fhir/Patient/unknown", headers=_auth(token()))
                assert response.status_code == 404
            await asyncio.sleep(0.05)
            assert len(application.state.audit_buffer) == 1
            assert await stored_audit_events(engine) == []
        [event] = await stored_audit_events(engine)
        assert event["outcomeDesc"] == "HTTP 404"

    async def test_a_failed_write_keeps_the_events_and_logs_their_ids_only(
        self,
        anonymous_client: httpx.AsyncClient,
        engine: AsyncEngine,
        caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        message = "the database quoted " + _event("Sensitive-Surname")["outcomeDesc"]

        async def failing(*args: Any, **kwargs: Any) -> None:
            raise RuntimeError(message)

        buffer = AuditBuffer(engine, interval=3600, batch=100, capacity=100)
        buffer.add(_event("Sensitive-Surname"))
        buffer.add(_event("Sensitive-Surname"))
        monkeypatch.setattr(audit_api, "write_audit_events", failing)
        with caplog.at_level(logging.ERROR, logger="service.api.audit"):
            assert not await buffer.flush()
        assert len(buffer) == 2
        assert "could not write 2 AuditEvents" in caplog.text
        assert "Sensitive" not in caplog.text
        ids = [event_id for event_id, _ in buffer._pending]
        assert all(event_id in caplog.text for event_id in ids)

        monkeypatch.undo()
        assert await buffer.flush()
        assert sorted(await _stored_with_ids(engine)) == sorted(ids)

    async def test_a_retried_write_skips_what_an_attempt_already_stored(
        self, anonymous_client: httpx.AsyncClient, engine: AsyncEngine
    ) -> None:
        events = [("first", _event("a")), ("second", _event("b"))]
        await write_audit_events(engine, events[:1])
        # As after an attempt whose COMMIT reached the database but whose answer did not come back.
        await write_audit_events(engine, events, again=True)
        assert sorted(await _stored_with_ids(engine)) == ["first", "second"]

    async def test_beyond_its_capacity_the_oldest_are_dropped_and_their_ids_logged(
        self, anonymous_client: httpx.AsyncClient, engine: AsyncEngine, caplog: pytest.LogCaptureFixture
    ) -> None:
        buffer = AuditBuffer(engine, interval=3600, batch=100, capacity=3)
        for n in range(5):
            buffer.add(_event(f"Sensitive-{n}"))
        assert len(buffer) == 3
        with caplog.at_level(logging.ERROR, logger="service.api.audit"):
            assert await buffer.flush()
        assert "2 AuditEvents are lost" in caplog.text
        assert "Sensitive" not in caplog.text
        stored = await _stored_with_ids(engine)
        assert sorted(event["outcomeDesc"] for event in stored.values()) == [
            "Sensitive-2",
            "Sensitive-3",
            "Sensitive-4",
        ]

    async def test_a_full_batch_is_written_before_the_interval_ends(
        self, anonymous_client: httpx.AsyncClient, engine: AsyncEngine
    ) -> None:
        buffer = AuditBuffer(engine, interval=3600, batch=3, capacity=100)
        buffer.start()
        try:
            for n in range(3):
                buffer.add(_event(str(n)))
            for _ in range(200):
                if len(await _stored_with_ids(engine)) == 3:
                    break
                await asyncio.sleep(0.01)
            assert len(await _stored_with_ids(engine)) == 3
        finally:
            await buffer.close()


def _event(description: str) -> dict[str, Any]:
    return {
        "resourceType": "AuditEvent",
        "recorded": "2026-01-01T00:00:00.000Z",
        "outcome": "0",
        "outcomeDesc": description,
    }


def _timestamp(event: dict[str, Any]) -> float:
    return datetime.fromisoformat(event["recorded"].replace("Z", "+00:00")).timestamp()


async def _stored_with_ids(engine: AsyncEngine) -> dict[str, dict[str, Any]]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            select(resource_versions.c.id, resource_versions.c.content).where(
                resource_versions.c.resource_type == "AuditEvent"
            )
        )
        return {row.id: row.content for row in rows}
