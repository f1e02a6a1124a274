"""Deny by default: bearer tokens, SMART scopes and patient compartments.

Specs: https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html,
https://hl7.org/fhir/R4/compartmentdefinition-patient.html, https://www.rfc-editor.org/rfc/rfc6750#section-3.
"""

import time
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import pytest

from service.config import Settings
from tests.conftest import TEST_JWT_SECRET
from tests.factories import FHIR_JSON, patient, practitioner

Token = Callable[..., str]


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **FHIR_JSON}


def _claims(settings: Settings, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": "tester",
        "scope": "system/*.cruds",
        "iat": now,
        "nbf": now,
        "exp": now + 600,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


async def _seed(client: httpx.AsyncClient, admin: str) -> dict[str, str]:
    """Two patients, a practitioner, and a goal of each patient."""
    ids: dict[str, str] = {}
    for name in ("a", "b"):
        response = await client.put(
            f"/fhir/Patient/{name}", json=patient(id=name, family=name.upper()), headers=_auth(admin)
        )
        assert response.status_code == 201, response.text
        goal = {
            "resourceType": "Goal",
            "lifecycleStatus": "active",
            "description": {"text": f"goal of {name}"},
            "subject": {"reference": f"Patient/{name}"},
        }
        created = await client.post("/fhir/Goal", json=goal, headers=_auth(admin))
        assert created.status_code == 201, created.text
        ids[f"goal_{name}"] = created.json()["id"]
    ids["practitioner"] = (
        await client.post("/fhir/Practitioner", json=practitioner(), headers=_auth(admin))
    ).json()["id"]
    return ids


class TestAuthentication:
    async def test_no_token_is_401_with_challenge(self, anonymous_client: httpx.AsyncClient) -> None:
        response = await anonymous_client.get("/fhir/Patient/a")
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.json()["resourceType"] == "OperationOutcome"

    @pytest.mark.parametrize("path", ["/fhir/metadata", "/.well-known/smart-configuration", "/health"])
    async def test_public_endpoints_need_no_token(
        self, anonymous_client: httpx.AsyncClient, path: str
    ) -> None:
        assert (await anonymous_client.get(path)).status_code == 200

    @pytest.mark.parametrize(
        "overrides",
        [
            {"exp": int(time.time()) - 10},
            {"nbf": int(time.time()) + 600},
            {"aud": "someone-else"},
            {"iss": "https://impostor.example"},
            {"exp": None},
        ],
        ids=["expired", "not-yet-valid", "wrong-audience", "wrong-issuer", "no-expiry"],
    )
    async def test_invalid_claims_are_401(
        self, anonymous_client: httpx.AsyncClient, settings: Settings, overrides: dict[str, Any]
    ) -> None:
        token = jwt.encode(_claims(settings, **overrides), TEST_JWT_SECRET, algorithm="HS256")
        response = await anonymous_client.get("/fhir/Patient/a", headers=_auth(token))
        assert response.status_code == 401
        assert 'error="invalid_token"' in response.headers["www-authenticate"]

    async def test_forged_signature_is_401(
        self, anonymous_client: httpx.AsyncClient, settings: Settings
    ) -> None:
        forged = jwt.encode(_claims(settings), "not-the-secret-of-this-server-0123456789", algorithm="HS256")
        assert (await anonymous_client.get("/fhir/Patient/a", headers=_auth(forged))).status_code == 401

    @pytest.mark.parametrize("header", ["Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Bearer not.a.jwt"])
    async def test_malformed_authorization_is_401(
        self, anonymous_client: httpx.AsyncClient, header: str
    ) -> None:
        response = await anonymous_client.get("/fhir/Patient/a", headers={"Authorization": header})
        assert response.status_code == 401

    async def test_unknown_token_writes_nothing(
        self, anonymous_client: httpx.AsyncClient, token: Token
    ) -> None:
        response = await anonymous_client.post("/fhir/Patient", json=patient(), headers=FHIR_JSON)
        assert response.status_code == 401
        history = await anonymous_client.get("/fhir/_history", headers=_auth(token()))
        assert "entry" not in history.json()


class TestScopes:
    async def test_read_only_user_cannot_write(
        self, anonymous_client: httpx.AsyncClient, token: Token
    ) -> None:
        reader = token("user/*.rs")
        assert (
            await anonymous_client.post("/fhir/Patient", json=patient(), headers=_auth(reader))
        ).status_code == 403
        await anonymous_client.put("/fhir/Patient/a", json=patient(id="a"), headers=_auth(token()))
        assert (await anonymous_client.get("/fhir/Patient/a", headers=_auth(reader))).status_code == 200
        assert (await anonymous_client.delete("/fhir/Patient/a", headers=_auth(reader))).status_code == 403

    async def test_write_only_scope_cannot_read(
        self, anonymous_client: httpx.AsyncClient, token: Token
    ) -> None:
        writer = token("user/Patient.write")
        created = await anonymous_client.post("/fhir/Patient", json=patient(), headers=_auth(writer))
        assert created.status_code == 201
        response = await anonymous_client.get(f"/fhir/Patient/{created.json()['id']}", headers=_auth(writer))
        assert response.status_code == 403
        assert response.json()["issue"][0]["code"] == "forbidden"

    @pytest.mark.parametrize(
        "scope", ["system/Patient.cruds", "system/Patient.*", "user/*.*", "system/Patient.c"]
    )
    async def test_v1_and_v2_forms_grant_create(
        self, anonymous_client: httpx.AsyncClient, token: Token, scope: str
    ) -> None:
        response = await anonymous_client.post("/fhir/Patient", json=patient(), headers=_auth(token(scope)))
        assert response.status_code == 201

    @pytest.mark.parametrize(
        "scope", ["system/Goal.cruds", "openid profile", "system/Patient.rc", "system/Patient.xyz"]
    )
    async def test_scope_for_another_type_or_malformed_is_403(
        self, anonymous_client: httpx.AsyncClient, token: Token, scope: str
    ) -> None:
        response = await anonymous_client.post("/fhir/Patient", json=patient(), headers=_auth(token(scope)))
        assert response.status_code == 403

    async def test_history_needs_read(self, anonymous_client: httpx.AsyncClient, token: Token) -> None:
        assert (
            await anonymous_client.get("/fhir/Patient/_history", headers=_auth(token("user/Goal.rs")))
        ).status_code == 403
        assert (
            await anonymous_client.get("/fhir/Patient/_history", headers=_auth(token("user/Patient.r")))
        ).status_code == 200


class TestSharedContent:
    async def test_any_valid_token_reads_content(
        self, anonymous_client: httpx.AsyncClient, token: Token
    ) -> None:
        questionnaire = {"resourceType": "Questionnaire", "status": "active", "id": "q1"}
        await anonymous_client.put("/fhir/Questionnaire/q1", json=questionnaire, headers=_auth(token()))
        reader = token("patient/Goal.rs", patient="a")
        assert (
            await anonymous_client.get("/fhir/Questionnaire/q1", headers=_auth(reader))
        ).status_code == 200

    async def test_patient_scopes_cannot_write_content(
        self, anonymous_client: httpx.AsyncClient, token: Token
    ) -> None:
        questionnaire = {"resourceType": "Questionnaire", "status": "active", "id": "q2"}
        patient_token = token("patient/*.cruds", patient="a")
        response = await anonymous_client.put(
            "/fhir/Questionnaire/q2", json=questionnaire, headers=_auth(patient_token)
        )
        assert response.status_code == 403
        user = token("user/Questionnaire.cu")
        assert (
            await anonymous_client.put("/fhir/Questionnaire/q2", json=questionnaire, headers=_auth(user))
        ).status_code == 201


class TestPatientCompartment:
    async def test_reads_only_its_own_resources(
        self, anonymous_client: httpx.AsyncClient, token: Token
    ) -> None:
        ids = await _seed(anonymous_client, token())
        mine = token("patient/*.rs", patient="a")
        assert (await anonymous_client.get("/fhir/Patient/a", headers=_auth(mine))).status_code == 200
        assert (
            await anonymous_client.get(f"/fhir/Goal/{ids['goal_a']}", headers=_auth(mine))
        ).status_code == 200
        other = await anonymous_client.get("/fhir/Patient/b", headers=_auth(mine))
        assert other.status_code == 404
        assert "b" not in other.json()["issue"][0].get("expression", [""])[0]
        assert (
            await anonymous_client.get(f"/fhir/Goal/{ids['goal_b']}", headers=_auth(mine))
        ).status_code == 404
        assert (
            await anonymous_client.get(f"/fhir/Goal/{ids['goal_b']}/_history/1", headers=_auth(mine))
        ).status_code == 404
        assert (
            await anonymous_client.get(f"/fhir/Goal/{ids['goal_b']}/_history", headers=_auth(mine))
        ).status_code == 404

    async def test_type_history_shows_only_its_compartment(
        self, anonymous_client: httpx.AsyncClient, token: Token
    ) -> None:
        ids = await _seed(anonymous_client, token())
        mine = token("patient/*.rs", patient="a")
        bundle = (await anonymous_client.get("/fhir/Goal/_history", headers=_auth(mine))).json()
        assert [e["resource"]["id"] for e in bundle["entry"]] == [ids["goal_a"]]
        system = (await anonymous_client.get("/fhir/_history", headers=_auth(mine))).json()
        # The practitioner is outside any compartment and readable with patient/*.rs, as by a read.
        subjects = {
            e["resource"].get("subject", {}).get("reference", f"Patient/{e['resource']['id']}")
            for e in system["entry"]
            if e["resource"]["resourceType"] != "Practitioner"
        }
        assert subjects == {"Patient/a"}
        assert {
            e["resource"]["id"] for e in system["entry"] if e["resource"]["resourceType"] == "Practitioner"
        } == {ids["practitioner"]}

    async def test_non_compartment_types_stay_readable(
        self, anonymous_client: httpx.AsyncClient, token: Token
    ) -> None:
        ids = await _seed(anonymous_client, token())
        mine = token("patient/*.rs", patient="a")
        response = await anonymous_client.get(
            f"/fhir/Practitioner/{ids['practitioner']}", headers=_auth(mine)
        )
        assert response.status_code == 200

    async def test_writes_for_another_patient_are_refused(
        self, anonymous_client: httpx.AsyncClient, token: Token
    ) -> None:
        ids = await _seed(anonymous_client, token())
        mine = token("patient/*.cruds", patient="a")
        goal = {"resourceType": "Goal", "lifecycleStatus": "proposed", "description": {"text": "x"}}
        for_b = await anonymous_client.post(
            "/fhir/Goal", json={**goal, "subject": {"reference": "Patient/b"}}, headers=_auth(mine)
        )
        assert for_b.status_code == 403
        for_a = await anonymous_client.post(
            "/fhir/Goal", json={**goal, "subject": {"reference": "Patient/a"}}, headers=_auth(mine)
        )
        assert for_a.status_code == 201
        stolen = {**goal, "id": ids["goal_b"], "subject": {"reference": "Patient/a"}}
        overwrite = await anonymous_client.put(
            f"/fhir/Goal/{ids['goal_b']}", json=stolen, headers=_auth(mine)
        )
        assert overwrite.status_code == 404
        assert (
            await anonymous_client.delete(f"/fhir/Goal/{ids['goal_b']}", headers=_auth(mine))
        ).status_code == 404
        still = await anonymous_client.get(f"/fhir/Goal/{ids['goal_b']}", headers=_auth(token()))
        assert still.json()["meta"]["versionId"] == "1"

    async def test_patient_scope_without_patient_claim_is_403(
        self, anonymous_client: httpx.AsyncClient, token: Token
    ) -> None:
        response = await anonymous_client.get("/fhir/Patient/a", headers=_auth(token("patient/*.rs")))
        assert response.status_code == 403
