"""Schemathesis against the committed OpenAPI document, over real HTTP to the service on PostgreSQL.

Every documented operation is called with generated data (valid and invalid); no response may be a 5xx,
and every response must match its documented status code, media type and schema.
"""

import os
import socket
import threading
import time
from collections.abc import Iterator

import hypothesis
import pytest
import schemathesis
import uvicorn
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from service.api.security import mint_token
from service.app import create_app
from service.config import Settings
from service.openapi import DOCUMENT, render

schema = schemathesis.openapi.from_path(DOCUMENT)
# `make test` keeps the run short; `CONTRACT_EXAMPLES=200 pytest tests/contract` explores further.
EXAMPLES = int(os.environ.get("CONTRACT_EXAMPLES", "8"))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def live_server(settings: Settings) -> Iterator[str]:
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the service did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


class TestOpenApiDocument:
    def test_committed_document_matches_the_code(self) -> None:
        assert DOCUMENT.read_text() == render(), "openapi/openapi.json is stale: run `make openapi`"


@schema.parametrize()
@hypothesis.settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(hypothesis.HealthCheck),
    derandomize=True,
)
def test_api_conforms_to_its_contract(case: schemathesis.Case, live_server: str, settings: Settings) -> None:
    case.call_and_validate(
        base_url=live_server,
        headers={"Authorization": f"Bearer {mint_token(settings, scope='system/*.cruds')}"},
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
    )
