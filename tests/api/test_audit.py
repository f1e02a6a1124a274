"""Every access to clinical data leaves an AuditEvent; the trail is append-only and needs its own scope.

Spec: https://hl7.org/fhir/R4/auditevent.html
"""

import base64
from collections.abc import Callable

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from service.storage.tables import resources
from tests.factories import FHIR_JSON, patient

Token = Callable[..., str]


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **FHIR_JSON}


async def _events(engine: AsyncEngine) -> list[dict[str, object]]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            select(resources.c.content)
            .where(resources.c.resource_type == "AuditEvent")
            .order_by(resources.c.last_updated)
        )
        return list(rows.scalars())


def _subtype(event: dict[str, object]) -> str:
    return event["subtype"][0]["code"]  # type: ignore[index,no-any-return]


class TestRecording:
    async def test_create_and_read_are_recorded_with_who_and_what(
        self, anonymous_client: httpx.AsyncClient, token: Token, engine: AsyncEngine
    ) -> None:
        writer = token("user/Patient.cruds", subject="therapist-7", client_id="ehr-1")
        created = await anonymous_client.post("/fhir/Patient", json=patient(), headers=_auth(writer))
        patient_id = created.json()["id"]
        await anonymous_client.get(f"/fhir/Patient/{patient_id}", headers=_auth(writer))
        create_event, read_event = await _events(engine)
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
        self, anonymous_client: httpx.AsyncClient, token: Token, engine: AsyncEngine
    ) -> None:
        assert (await anonymous_client.get("/fhir/Patient/a")).status_code == 401
        assert (
            await anonymous_client.get("/fhir/Patient/a", headers=_auth(token("user/Goal.rs")))
        ).status_code == 403
        unauthenticated, forbidden = await _events(engine)
        assert unauthenticated["outcome"] == "4"
        assert unauthenticated["agent"][0]["who"]["identifier"]["value"] == "anonymous"  # type: ignore[index]
        assert forbidden["outcome"] == "4"
        assert forbidden["outcomeDesc"] == "HTTP 403"

    async def test_search_keeps_its_query(
        self, anonymous_client: httpx.AsyncClient, token: Token, engine: AsyncEngine
    ) -> None:
        await anonymous_client.get("/fhir/Patient", params={"family": "Rivera"}, headers=_auth(token()))
        (event,) = await _events(engine)
        assert _subtype(event) == "search-type"
        query = event["entity"][-1]["query"]  # type: ignore[index]
        assert base64.b64decode(query).decode() == "family=Rivera"

    async def test_shared_content_reads_are_not_audited(
        self, anonymous_client: httpx.AsyncClient, token: Token, engine: AsyncEngine
    ) -> None:
        await anonymous_client.get("/fhir/Questionnaire/unknown", headers=_auth(token()))
        await anonymous_client.get("/fhir/metadata")
        assert await _events(engine) == []


class TestAuditTrailAccess:
    async def test_searchable_with_an_audit_scope_only(
        self, anonymous_client: httpx.AsyncClient, token: Token, engine: AsyncEngine
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
        self, anonymous_client: httpx.AsyncClient, token: Token, engine: AsyncEngine
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
        bundle = {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [{"resource": event, "request": {"method": "POST", "url": "AuditEvent"}}],
        }
        assert (await anonymous_client.post("/fhir", json=bundle, headers=_auth(token()))).status_code == 403
