"""Production keys: RS256 and ES256 tokens verified against a JWKS file or URL (with key rotation)."""

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi import FastAPI
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from service.app import create_app
from service.config import Settings


def _jwk(private_key: Any, kid: str, algorithm: str) -> dict[str, Any]:
    public = private_key.public_key()
    exported = (
        RSAAlgorithm.to_jwk(public, as_dict=True)
        if algorithm.startswith("RS")
        else ECAlgorithm.to_jwk(public, as_dict=True)
    )
    return {**exported, "kid": kid, "alg": algorithm, "use": "sig"}


def _token(settings: Settings, private_key: Any, kid: str, algorithm: str) -> str:
    now = int(time.time())
    claims = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": "ehr",
        "scope": "system/*.rs",
        "exp": now + 300,
    }
    return jwt.encode(claims, private_key, algorithm=algorithm, headers={"kid": kid})


async def _status(app: FastAPI, token: str) -> int:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.get("/fhir/Patient/_history", headers={"Authorization": f"Bearer {token}"})
        return response.status_code


@pytest.fixture
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


class TestJwksFile:
    async def test_rs256_and_es256_accepted_hs256_refused(
        self,
        settings: Settings,
        tmp_path: Path,
        rsa_key: rsa.RSAPrivateKey,
        ec_key: ec.EllipticCurvePrivateKey,
    ) -> None:
        jwks = {"keys": [_jwk(rsa_key, "r1", "RS256"), _jwk(ec_key, "e1", "ES256")]}
        path = tmp_path / "jwks.json"
        path.write_text(json.dumps(jwks))
        app = create_app(settings.model_copy(update={"jwks_file": path, "load_content_on_start": False}))
        async with app.router.lifespan_context(app):
            assert await _status(app, _token(settings, rsa_key, "r1", "RS256")) == 200
            assert await _status(app, _token(settings, ec_key, "e1", "ES256")) == 200
            other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            assert await _status(app, _token(settings, other, "r1", "RS256")) == 401
            # With a JWKS configured, the development secret no longer signs anything valid.
            assert (
                await _status(
                    app,
                    jwt.encode(
                        {"sub": "x"}, "a-shared-secret-that-is-long-enough-0123456789", algorithm="HS256"
                    ),
                )
                == 401
            )


class _JwksServer:
    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = json.dumps({"keys": outer.keys}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks.json"


@pytest.fixture
def jwks_server() -> Iterator[_JwksServer]:
    served = _JwksServer()
    thread = threading.Thread(target=served.server.serve_forever, daemon=True)
    thread.start()
    yield served
    served.server.shutdown()
    # shutdown() stops the loop; the listening socket stays open until server_close().
    served.server.server_close()
    thread.join(timeout=10)


class TestJwksUrl:
    async def test_rotated_key_is_fetched(
        self, settings: Settings, jwks_server: _JwksServer, rsa_key: rsa.RSAPrivateKey
    ) -> None:
        jwks_server.keys = [_jwk(rsa_key, "old", "RS256")]
        app = create_app(
            settings.model_copy(
                update={
                    "jwks_url": jwks_server.url,
                    "jwks_refresh_cooldown": 0,
                    "load_content_on_start": False,
                }
            )
        )
        async with app.router.lifespan_context(app):
            assert await _status(app, _token(settings, rsa_key, "old", "RS256")) == 200
            rotated = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            jwks_server.keys = [_jwk(rsa_key, "old", "RS256"), _jwk(rotated, "new", "RS256")]
            assert await _status(app, _token(settings, rotated, "new", "RS256")) == 200
            assert await _status(app, _token(settings, rotated, "unknown", "RS256")) == 401
