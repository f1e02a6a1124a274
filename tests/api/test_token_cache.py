"""A token's signature is verified once and its claims reused until it expires or is due for a re-check."""

import asyncio
import time
from collections.abc import Callable

import httpx
import jwt
import pytest
from fastapi import FastAPI

from service.api import security
from service.config import Settings
from tests.conftest import TEST_JWT_SECRET

Token = Callable[..., str]


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The tokens whose signature was checked, in order."""
    seen: list[str] = []
    decode = jwt.decode

    def counting(token: str, *args: object, **kwargs: object) -> object:
        seen.append(token)
        return decode(token, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(security.jwt, "decode", counting)
    return seen


@pytest.fixture(autouse=True)
def empty_cache(app: FastAPI) -> None:
    app.state.token_verifier.verified.clear()


async def test_a_token_is_verified_once_while_it_is_valid(
    anonymous_client: httpx.AsyncClient, token: Token, decodes: list[str]
) -> None:
    bearer = token("user/*.rs")
    for _ in range(3):
        response = await anonymous_client.get("/fhir/Patient", headers={"Authorization": f"Bearer {bearer}"})
        assert response.status_code == 200
    assert decodes == [bearer]
    # Another token is verified on its own.
    other = token("user/*.rs", subject="someone-else")
    await anonymous_client.get("/fhir/Patient", headers={"Authorization": f"Bearer {other}"})
    assert decodes == [bearer, other]


async def test_a_cached_token_stops_working_when_it_expires(
    anonymous_client: httpx.AsyncClient, settings: Settings
) -> None:
    now = int(time.time())
    claims = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": "brief",
        "scope": "user/*.rs",
        "exp": now + 1,
    }
    headers = {"Authorization": f"Bearer {jwt.encode(claims, TEST_JWT_SECRET, 'HS256')}"}
    assert (await anonymous_client.get("/fhir/Patient", headers=headers)).status_code == 200
    await asyncio.sleep(max(0.0, now + 1.2 - time.time()))
    expired = await anonymous_client.get("/fhir/Patient", headers=headers)
    assert expired.status_code == 401
    assert "expired" in expired.text


async def test_claims_are_checked_again_after_the_recheck_interval(
    anonymous_client: httpx.AsyncClient,
    app: FastAPI,
    token: Token,
    decodes: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    verifier = app.state.token_verifier
    monkeypatch.setattr(verifier.settings, "token_recheck_seconds", 0.2)
    bearer = token("user/*.rs")
    headers = {"Authorization": f"Bearer {bearer}"}
    await anonymous_client.get("/fhir/Patient", headers=headers)
    await anonymous_client.get("/fhir/Patient", headers=headers)
    assert len(decodes) == 1
    await asyncio.sleep(0.3)
    await anonymous_client.get("/fhir/Patient", headers=headers)
    assert len(decodes) == 2


async def test_a_refused_token_is_not_remembered(
    anonymous_client: httpx.AsyncClient, settings: Settings, decodes: list[str]
) -> None:
    claims = {"iss": settings.jwt_issuer, "aud": settings.jwt_audience, "scope": "user/*.rs"}
    forged = jwt.encode(
        {**claims, "exp": int(time.time()) + 60}, "not-the-secret-of-this-server-0123456789abcdef", "HS256"
    )
    for _ in range(2):
        response = await anonymous_client.get("/fhir/Patient", headers={"Authorization": f"Bearer {forged}"})
        assert response.status_code == 401
    assert len(decodes) == 2
