"""Every kind of token against every interaction, on a resource inside and outside its patient's compartment.

For each cell: the status is the one the rules give, a refused request changes nothing, nothing of the
other patient reaches a token that may not see it, and exactly one AuditEvent records the request with its
outcome. Specs: https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html,
https://hl7.org/fhir/R4/compartmentdefinition-patient.html, https://hl7.org/fhir/R4/auditevent.html
"""

import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from service.api.security import mint_token
from service.config import Settings
from service.storage.tables import resource_versions
from tests.conftest import TEST_JWT_SECRET
from tests.factories import FHIR_JSON, patient

INVALID = ("none", "expired", "wrong-audience", "forged")
TOKENS = (*INVALID, "user-read", "patient-a-read", "patient-a-write", "system")
INTERACTIONS = ("read", "vread", "history", "search", "create", "update", "patch", "delete")
WRITES = frozenset({"create", "update", "patch", "delete"})
SUCCESS = {
    "read": 200,
    "vread": 200,
    "history": 200,
    "search": 200,
    "create": 201,
    "update": 200,
    "patch": 200,
    "delete": 204,
}
# Only tokens that may see patient b's data may ever receive this text.
SECRET_OF_B = "goal of b: reconcile with brother"


def expected_status(token: str, interaction: str, owner: str) -> int:
    if token in INVALID:
        return 401
    write = interaction in WRITES
    if token == "system":
        return SUCCESS[interaction]
    if token in ("user-read", "patient-a-read") and write:
        return 403
    if token.startswith("patient-a") and owner == "b":
        # Writing a resource that names patient b is refused outright; anything else of b does not exist.
        return (
            403
            if interaction in ("create", "update")
            else SUCCESS["search"]
            if interaction == "search"
            else 404
        )
    return SUCCESS[interaction]


def _goal(owner: str) -> dict[str, Any]:
    text = SECRET_OF_B if owner == "b" else f"goal of {owner}"
    return {
        "resourceType": "Goal",
        "lifecycleStatus": "active",
        "description": {"text": text},
        "subject": {"reference": f"Patient/{owner}"},
    }


def _bearer(token: str, settings: Settings) -> dict[str, str]:
    now = int(time.time())
    claims = {"iss": settings.jwt_issuer, "aud": settings.jwt_audience, "sub": "matrix", "iat": now}
    if token == "none":
        return {}
    if token == "expired":
        encoded = jwt.encode({**claims, "scope": "system/*.cruds", "exp": now - 60}, TEST_JWT_SECRET, "HS256")
    elif token == "wrong-audience":
        wrong = {**claims, "aud": "https://elsewhere.example", "scope": "system/*.cruds", "exp": now + 600}
        encoded = jwt.encode(wrong, TEST_JWT_SECRET, "HS256")
    elif token == "forged":
        forged = {**claims, "scope": "system/*.cruds", "exp": now + 600}
        encoded = jwt.encode(forged, "a-secret-this-server-never-had-0123456789", "HS256")
    else:
        scope, patient_id = {
            "user-read": ("user/*.rs", None),
            "patient-a-read": ("patient/*.rs", "a"),
            "patient-a-write": ("patient/*.cruds", "a"),
            "system": ("system/*.cruds", None),
        }[token]
        encoded = mint_token(settings, scope=scope, patient=patient_id)
    return {"Authorization": f"Bearer {encoded}"}


async def _count(engine: AsyncEngine, *, audit: bool) -> int:
    table = resource_versions
    condition = table.c.resource_type == "AuditEvent" if audit else table.c.resource_type != "AuditEvent"
    async with engine.connect() as connection:
        return int((await connection.execute(select(func.count()).where(condition))).scalar_one())


async def _latest_audit(engine: AsyncEngine) -> dict[str, Any]:
    async with engine.connect() as connection:
        content = (
            await connection.execute(
                select(resource_versions.c.content)
                .where(resource_versions.c.resource_type == "AuditEvent")
                .order_by(resource_versions.c.seq.desc())
                .limit(1)
            )
        ).scalar_one()
    event: dict[str, Any] = content
    return event


def _request(
    client: httpx.AsyncClient, interaction: str, goal_id: str, owner: str, headers: dict[str, str]
) -> Any:
    url = f"/fhir/Goal/{goal_id}"
    headers = {**headers, **FHIR_JSON}
    if interaction == "read":
        return client.get(url, headers=headers)
    if interaction == "vread":
        return client.get(f"{url}/_history/1", headers=headers)
    if interaction == "history":
        return client.get(f"{url}/_history", headers=headers)
    if interaction == "search":
        return client.get("/fhir/Goal", params={"subject": f"Patient/{owner}"}, headers=headers)
    if interaction == "create":
        return client.post("/fhir/Goal", json=_goal(owner), headers=headers)
    if interaction == "update":
        changed = {**_goal(owner), "id": goal_id, "lifecycleStatus": "completed"}
        return client.put(url, json=changed, headers=headers)
    if interaction == "patch":
        patch = [{"op": "replace", "path": "/lifecycleStatus", "value": "completed"}]
        return client.patch(
            url, json=patch, headers={**headers, "Content-Type": "application/json-patch+json"}
        )
    return client.delete(url, headers=headers)


@pytest.mark.parametrize("owner", ["a", "b"], ids=["own", "other"])
@pytest.mark.parametrize("interaction", INTERACTIONS)
@pytest.mark.parametrize("token", TOKENS)
async def test_access_matrix(
    anonymous_client: httpx.AsyncClient,
    engine: AsyncEngine,
    flush_audit: Callable[[], Awaitable[bool]],
    settings: Settings,
    token: str,
    interaction: str,
    owner: str,
) -> None:
    system = _bearer("system", settings) | FHIR_JSON
    for patient_id in ("a", "b"):
        put = await anonymous_client.put(
            f"/fhir/Patient/{patient_id}", json=patient(id=patient_id), headers=system
        )
        assert put.status_code == 201
    goal_id = (await anonymous_client.post("/fhir/Goal", json=_goal(owner), headers=system)).json()["id"]
    await flush_audit()
    versions, audits = await _count(engine, audit=False), await _count(engine, audit=True)

    response = await _request(anonymous_client, interaction, goal_id, owner, _bearer(token, settings))

    status = expected_status(token, interaction, owner)
    assert response.status_code == status, response.text
    if status == 401:
        assert response.headers["www-authenticate"].startswith("Bearer")
    if status >= 400:
        assert response.json()["resourceType"] == "OperationOutcome"
    written = interaction in WRITES and status < 400
    assert await _count(engine, audit=False) == versions + (1 if written else 0)
    if owner == "b" and token not in ("system", "user-read"):
        assert SECRET_OF_B not in response.text
        # A 404 repeats the id the request named, as it would for an id that never existed.
        if interaction in ("search", "create"):
            assert goal_id not in response.text
    if token.startswith("patient-a") and interaction == "search":
        assert response.json().get("total") == (1 if owner == "a" else 0)
    await flush_audit()
    assert await _count(engine, audit=True) == audits + 1
    event = await _latest_audit(engine)
    assert event["outcome"] == ("0" if status < 400 else "4")
    assert event["outcomeDesc"] == f"HTTP {status}"
