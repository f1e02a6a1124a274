"""Bearer tokens: verification, the development signing key, and the access check of every endpoint.

Production keys come from a JWKS (a file, or a URL whose keys are cached and re-fetched when an unknown key
id appears, which is how rotation reaches us). Local development signs HS256 with a secret generated once
under `DATA_DIR`; `ipt-fhir token` mints such tokens. `exp`, `nbf`, `iss` and `aud` are always checked.
"""

import json
import secrets
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import jwt
import orjson
from cachetools import TLRUCache
from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.types import Message, Receive, Scope

from service.config import Settings
from service.errors import BadRequest, Issue, Unauthorized
from service.fhir.access import Principal, set_access
from service.fhir.authorization import authorize, needs_for, searched_types
from service.fhir.endpoints import Matched
from service.fhir.parsing import is_valid_id, loads
from service.fhir.scopes import parse_scopes

_ASYMMETRIC = ["RS256", "RS384", "RS512", "ES256", "ES384", "ES512"]
CHALLENGE = 'Bearer realm="ipt-fhir"'


def development_secret(settings: Settings) -> str:
    """The HS256 secret: configured, or generated once under DATA_DIR and kept there (mode 0600)."""
    if settings.jwt_secret:
        return settings.jwt_secret
    path = Path(settings.data_dir) / "jwt-secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(48))
    return path.read_text().strip()


def mint_token(
    settings: Settings,
    *,
    scope: str,
    patient: str | None = None,
    subject: str = "developer",
    expires_in: int = 3600,
    client_id: str = "ipt-fhir-cli",
) -> str:
    """A development token signed with the HS256 secret."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": subject,
        "client_id": client_id,
        "scope": scope,
        "iat": now,
        "nbf": now,
        "exp": now + expires_in,
    }
    if patient:
        claims["patient"] = patient
    return jwt.encode(claims, development_secret(settings), algorithm="HS256")


@dataclass(frozen=True, slots=True)
class Verified:
    principal: Principal
    # When the claims must be checked again: the token's expiry, or sooner, so that a key taken out of the
    # JWKS (or a changed secret) takes effect within `token_recheck_seconds`.
    recheck_at: float


def _recheck_at(_token: str, verified: Verified, _now: float) -> float:
    return verified.recheck_at


class TokenVerifier:
    """Checks a bearer token's signature and claims once, then reuses them until it expires or is due for a
    re-check: verifying a signature costs more than most reads."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.fetches_keys = bool(settings.jwks_url)
        self.verified: TLRUCache[str, Verified] = TLRUCache(
            maxsize=settings.token_cache_size, ttu=_recheck_at, timer=time.time
        )

    def remember(self, token: str, principal: Principal) -> None:
        if self.settings.token_recheck_seconds <= 0 or self.settings.token_cache_size <= 0:
            return
        recheck_at = min(principal.expires_at, time.time() + self.settings.token_recheck_seconds)
        self.verified[token] = Verified(principal, recheck_at)

    @cached_property
    def _jwks_client(self) -> jwt.PyJWKClient | None:
        if self.settings.jwks_url:
            return jwt.PyJWKClient(
                self.settings.jwks_url,
                cache_keys=True,
                lifespan=300,
                timeout=10,
                cooldown_duration=self.settings.jwks_refresh_cooldown,
            )
        return None

    @cached_property
    def _jwks_file(self) -> jwt.PyJWKSet | None:
        if self.settings.jwks_file:
            return jwt.PyJWKSet.from_json(Path(self.settings.jwks_file).read_text())
        return None

    @cached_property
    def _secret(self) -> str | None:
        if self.settings.jwks_url or self.settings.jwks_file:
            return None
        return development_secret(self.settings)

    def _key(self, token: str) -> tuple[Any, list[str]]:
        if self._secret is not None:
            return self._secret, ["HS256"]
        header = jwt.get_unverified_header(token)
        if self._jwks_file is not None:
            kid = header.get("kid")
            for key in self._jwks_file.keys:
                if kid is None or key.key_id == kid:
                    return key.key, _ASYMMETRIC
            raise jwt.InvalidKeyError(f"no key with id {kid!r}")
        assert self._jwks_client is not None
        return self._jwks_client.get_signing_key_from_jwt(token).key, _ASYMMETRIC

    def verify(self, token: str) -> Principal:
        try:
            key, algorithms = self._key(token)
            claims = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                audience=self.settings.jwt_audience,
                issuer=self.settings.jwt_issuer,
                options={"require": ["exp", "iss", "aud"]},
            )
        except (jwt.PyJWTError, ValueError, json.JSONDecodeError) as exc:
            raise _unauthorized(f"the bearer token is not valid: {exc}") from exc
        scope_text = claims.get("scope") or " ".join(claims.get("scp") or [])
        patient = claims.get("patient")
        # The patient confines every query of the request: a value no resource id can take (NUL, a lone
        # surrogate) would otherwise reach the database and fail there.
        if patient and not is_valid_id(str(patient)):
            raise _unauthorized(
                "the bearer token's patient claim is not a resource id (1-64 of A-Z a-z 0-9 - .)"
            )
        return Principal(
            subject=str(claims.get("sub", "")),
            client_id=claims.get("client_id") or claims.get("azp"),
            scopes=parse_scopes(str(scope_text)),
            patient=str(patient) if patient else None,
            scope_text=str(scope_text),
            expires_at=float(claims["exp"]),
        )


def _unauthorized(message: str) -> Unauthorized:
    return Unauthorized(
        Issue(message, expression="Authorization"),
        headers={"WWW-Authenticate": f'{CHALLENGE}, error="invalid_token"'},
    )


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized(
            Issue("this endpoint needs `Authorization: Bearer <token>`", expression="Authorization"),
            headers={"WWW-Authenticate": CHALLENGE},
        )
    return token.strip()


async def _verify(request: Request) -> Principal:
    verifier: TokenVerifier = request.app.state.token_verifier
    token = _bearer(request)
    known = verifier.verified.get(token)
    if known is not None:
        return known.principal
    if verifier.fetches_keys:
        # A JWKS URL may be fetched (blocking I/O) when a new key id appears.
        principal = await run_in_threadpool(verifier.verify, token)
    else:
        principal = verifier.verify(token)
    # Stored on the event loop's thread only: the cache needs no lock.
    verifier.remember(token, principal)
    return principal


async def check_access(scope: Scope, matched: Matched, receive: Receive) -> Receive:
    """The access check of every endpoint but the CapabilityStatement: the token, then what the request's
    entry in the endpoint table needs of its scopes. Returns the `receive` the route reads the body from
    (a Bundle's is read here, since what it needs depends on its entries)."""
    set_access(None)
    request = Request(scope, receive)
    principal = await _verify(request)
    request.state.principal = principal
    endpoint = matched.endpoint
    body: Any = None
    if endpoint.interaction == "transaction":
        raw = await request.body()
        try:
            body = loads(raw)
        except (orjson.JSONDecodeError, BadRequest):
            body = None  # the route answers 400 for the broken body
        # The route takes the parsed body from here.
        request.state.json_body = body
        receive = _replaying(raw, receive)
    types = (
        searched_types(request.query_params.multi_items())
        if endpoint.interaction == "search-system"
        else None
    )
    set_access(authorize(principal, needs_for(endpoint, body=body, searched_types=types)))
    return receive


def _replaying(body: bytes, receive: Receive) -> Receive:
    """A `receive` that gives the body already read once, then what the connection sends (a disconnect)."""
    given = False

    async def replay() -> Message:
        nonlocal given
        if given:
            return await receive()
        given = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
