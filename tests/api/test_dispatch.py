"""Dispatch from the endpoint table: what a URL is, decided once, for the router, the access check and the
audit trail alike.

The table must find for any request the route the routes themselves would have chosen (tried in turn, in
the order they were once included), and no route may be reached except through its entry, whose access
check runs before it.
"""

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Response
from fastapi.routing import APIRoute
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.routing import Match

from service.api.dispatch import EndpointRoutes, bind
from service.fhir.endpoints import ENDPOINTS, TABLE, Endpoint, Matched, NotAllowed
from service.fhir.registry import RESOURCES
from tests.conftest import stored_audit_events
from tests.factories import FHIR_JSON

Token = Callable[..., str]


def _endpoint_routes(app: FastAPI) -> list[EndpointRoutes]:
    return [route for route in app.router.routes if isinstance(route, EndpointRoutes)]


def _routes_in_old_order(app: FastAPI) -> list[APIRoute]:
    """The routes in the order they were tried one by one before the table: every type's operations, then
    its searches, then its interactions (a literal segment before a `{resource_id}` in each group)."""
    fhir, ipt = _endpoint_routes(app)
    return [*fhir.routes, *ipt.routes]


def _starlette_choice(routes: list[APIRoute], method: str, path: str) -> APIRoute | str | None:
    """What trying `routes` in turn gives: the first full match, else "405" for a partial one, else None."""
    scope = {"type": "http", "method": method, "path": path, "root_path": ""}
    partial = False
    for route in routes:
        match, _ = route.matches(dict(scope))
        if match == Match.FULL:
            return route
        partial = partial or match == Match.PARTIAL
    return "405" if partial else None


_SEGMENTS = st.sampled_from(
    [
        *RESOURCES,
        "AuditEvent",
        "metadata",
        "_history",
        "_search",
        "$validate",
        "$populate",
        "$extract",
        "$apply",
        "$everything",
        "treatment-plans",
        "$from-careplan",
        "p1",
        "7",
        "_x",
        "Unknown",
        "",
    ]
)
_METHODS = st.sampled_from(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"])


_FIRST = ["Patient", "Questionnaire", "QuestionnaireResponse", "PlanDefinition", "AuditEvent", "metadata"]
_FIRST += ["_history", "treatment-plans", "Unknown"]
_REST = ["_history", "_search", "$validate", "$extract", "$apply", "$from-careplan", "p1", "7"]


def _structured_paths() -> list[str]:
    """Every path of up to four segments below `/fhir` and `/ipt` made of the segments the templates have."""
    tails: list[list[str]] = [[]]
    for _ in range(3):
        tails += [[*tail, piece] for tail in tails if len(tail) == len(tails[-1]) for piece in _REST]
    return [
        "/" + "/".join(path)
        for root in ("fhir", "ipt")
        for path in ([root], *([root, first, *tail] for first in _FIRST for tail in tails))
    ]


class TestTheTableMatchesWhatTheRoutesWould:
    def _agree(self, app: FastAPI, method: str, path: str) -> None:
        expected = _starlette_choice(_routes_in_old_order(app), method, path)
        found = TABLE.match(method, path)
        if isinstance(found, Matched):
            route_of = {e: r for table in _endpoint_routes(app) for e, r in table.route_of.items()}
            assert route_of[found.endpoint] is expected, (method, path)
        elif isinstance(found, NotAllowed):
            assert expected == "405", (method, path)
        else:
            assert expected is None, (method, path)

    @pytest.mark.parametrize("method", ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"])
    def test_the_same_route_for_every_path_of_template_segments(self, app: FastAPI, method: str) -> None:
        for path in _structured_paths():
            self._agree(app, method, path)

    @settings(max_examples=500, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
    @given(
        method=_METHODS,
        root=st.sampled_from(["fhir", "ipt"]),
        segments=st.lists(_SEGMENTS, min_size=0, max_size=5),
    )
    def test_the_same_route_for_any_path(
        self, app: FastAPI, method: str, root: str, segments: list[str]
    ) -> None:
        self._agree(app, method, "/" + "/".join([root, *segments]))

    def test_every_entry_has_its_route_and_every_route_its_entry(self, app: FastAPI) -> None:
        bound = {e for table in _endpoint_routes(app) for e in table.route_of}
        assert bound == set(ENDPOINTS)
        routes = [r for table in _endpoint_routes(app) for r in table.route_of.values()]
        assert len(routes) == len(set(map(id, routes))) == len(ENDPOINTS)


class TestBinding:
    @staticmethod
    def _router(*paths: str) -> APIRouter:
        router = APIRouter(prefix="/fhir")
        for path in paths:

            async def answer() -> Response:
                return Response()

            router.add_api_route(path, answer, methods=["GET"])
        return router

    def test_a_route_without_an_entry_is_refused(self) -> None:
        endpoints = (Endpoint("fhir", "GET", "/fhir/metadata", "capabilities", public=True),)
        routes = [r for r in self._router("/metadata", "/secret").routes if isinstance(r, APIRoute)]
        with pytest.raises(ValueError, match="without an entry"):
            bind("/fhir", routes, endpoints)

    def test_an_entry_without_a_route_is_refused(self) -> None:
        endpoints = (
            Endpoint("fhir", "GET", "/fhir/metadata", "capabilities", public=True),
            Endpoint("fhir", "GET", "/fhir/Patient", "search-type", "Patient"),
        )
        routes = [r for r in self._router("/metadata").routes if isinstance(r, APIRoute)]
        with pytest.raises(ValueError, match="no route answers GET /fhir/Patient"):
            bind("/fhir", routes, endpoints)


def _url(endpoint: Endpoint) -> str:
    return (
        endpoint.path.replace("{resource_id}", "x1").replace("{version_id}", "1").replace("{plan_id}", "x1")
    )


def _body(endpoint: Endpoint) -> dict[str, Any] | None:
    if endpoint.method in ("GET", "HEAD", "DELETE"):
        return None
    if endpoint.interaction == "transaction":
        return {"resourceType": "Bundle", "type": "batch", "entry": []}
    return {"resourceType": endpoint.resource_type or "Parameters"}


class TestNoRouteWithoutItsCheck:
    @pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: f"{e.method} {e.path}")
    async def test_no_token_no_answer(self, anonymous_client: httpx.AsyncClient, endpoint: Endpoint) -> None:
        response = await anonymous_client.request(
            endpoint.method, _url(endpoint), json=_body(endpoint), headers=FHIR_JSON
        )
        if endpoint.public:
            assert response.status_code == 200
        else:
            assert response.status_code == 401, response.text
            assert response.headers["WWW-Authenticate"].startswith("Bearer")

    @pytest.mark.parametrize(
        "endpoint", [e for e in ENDPOINTS if not e.public], ids=lambda e: f"{e.method} {e.path}"
    )
    async def test_what_the_scopes_do_not_allow_is_refused_before_the_route(
        self, anonymous_client: httpx.AsyncClient, token: Token, endpoint: Endpoint
    ) -> None:
        headers = {"Authorization": f"Bearer {token('system/AuditEvent.rs')}", **FHIR_JSON}
        response = await anonymous_client.request(
            endpoint.method, _url(endpoint), json=_body(endpoint), headers=headers
        )
        if _allowed_to_read_the_audit_trail_only(endpoint):
            assert response.status_code not in (401, 403), (endpoint, response.text)
        else:
            assert response.status_code == 403, (endpoint, response.text)
            assert response.json()["resourceType"] == "OperationOutcome"


def _allowed_to_read_the_audit_trail_only(endpoint: Endpoint) -> bool:
    """What a token whose one scope is `system/AuditEvent.rs` may do: read the trail, read shared content
    (which any valid token may), and send a Bundle with no entries."""
    if endpoint.interaction == "transaction" or endpoint.resource_type == "AuditEvent":
        return True
    if endpoint.api != "fhir" or endpoint.resource_type is None:
        return False
    reading = endpoint.interaction in ("read", "vread", "history-instance", "history-type", "search-type")
    validating = endpoint.operation_code == "$validate"
    return RESOURCES[endpoint.resource_type].kind == "content" and (reading or validating)


class TestAnswersOfTheTable:
    async def test_a_path_served_with_other_methods_is_405_naming_them(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.patch("/fhir/Patient", headers=FHIR_JSON)
        assert response.status_code == 405
        assert set(response.headers["Allow"].split(", ")) == {"GET", "POST", "PUT", "DELETE"}
        outcome = response.json()
        assert outcome["resourceType"] == "OperationOutcome"
        assert outcome["issue"][0]["code"] == "not-supported"

    async def test_an_unserved_path_is_404(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/fhir/Patient/x1/_history/1/extra")
        assert response.status_code == 404
        assert response.json()["issue"][0]["code"] == "not-found"

    async def test_a_trailing_slash_redirects_to_the_endpoint(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/fhir/Patient/")
        assert response.status_code == 307
        assert response.headers["Location"].endswith("/fhir/Patient")


async def _events(engine: AsyncEngine, flush: Callable[[], Awaitable[bool]]) -> list[dict[str, Any]]:
    assert await flush()
    return await stored_audit_events(engine)


class TestTheAuditTrailRecordsTheMatch:
    @pytest.mark.parametrize(
        ("method", "path", "interaction"),
        [
            ("GET", "/fhir/Patient/x1", "read"),
            ("GET", "/fhir/Patient/x1/_history/2", "vread"),
            ("GET", "/fhir/Patient/x1/_history", "history-instance"),
            ("GET", "/fhir/Patient/_history", "history-type"),
            ("GET", "/fhir/_history", "history-system"),
            ("GET", "/fhir/Patient", "search-type"),
            ("POST", "/fhir/Patient/_search", "search-type"),
            ("GET", "/fhir", "search-system"),
            ("DELETE", "/fhir/Patient/x1", "delete"),
            ("GET", "/fhir/QuestionnaireResponse/x1/$extract", "operation"),
            ("GET", "/ipt/treatment-plans/x1", "read"),
        ],
    )
    async def test_the_interaction_is_the_entry_s(
        self,
        client: httpx.AsyncClient,
        engine: AsyncEngine,
        flush_audit: Callable[[], Awaitable[bool]],
        method: str,
        path: str,
        interaction: str,
    ) -> None:
        await client.request(method, path, headers=FHIR_JSON)
        [event] = await _events(engine, flush_audit)
        assert event["subtype"][0]["code"] == interaction

    async def test_a_probe_of_an_unserved_path_is_recorded_without_an_interaction(
        self, client: httpx.AsyncClient, engine: AsyncEngine, flush_audit: Callable[[], Awaitable[bool]]
    ) -> None:
        response = await client.get("/fhir/Patient/x1/secret/path")
        assert response.status_code == 404
        [event] = await _events(engine, flush_audit)
        assert "subtype" not in event
        assert event["outcome"] == "4"
        assert event["entity"][0]["description"] == "/fhir/Patient/x1/secret/path"


class TestBundleEntriesNeedWhatTheirRequestWould:
    @pytest.mark.parametrize("method", ["GET", "HEAD"])
    @pytest.mark.parametrize("url", ["QuestionnaireResponse/r1", "QuestionnaireResponse?subject=Patient/p1"])
    async def test_a_reading_entry_needs_the_read_or_search_scope(
        self, anonymous_client: httpx.AsyncClient, token: Token, method: str, url: str
    ) -> None:
        bundle = {
            "resourceType": "Bundle",
            "type": "batch",
            "entry": [{"request": {"method": method, "url": url}}],
        }
        headers = {"Authorization": f"Bearer {token('system/Patient.rs')}", **FHIR_JSON}
        response = await anonymous_client.post("/fhir", json=bundle, headers=headers)
        assert response.status_code == 403, response.text
        assert "QuestionnaireResponse" in response.json()["issue"][0]["diagnostics"]
