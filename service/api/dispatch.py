"""Requests under `/fhir` and `/ipt` are dispatched by looking their path up in the endpoint table.

The table (`service.fhir.endpoints`) says what a request is; each of its entries is bound to the one route
that answers it. A request is matched once, when something first asks (the audit trail, outside the
router); the match is kept in the request's scope, and the router, the access check and the audit trail all
read it from there. The routes are never tried one by one, and none of them is reachable but through its
entry: before the route runs, its entry's access check (the token, the scopes, what the entry needs) and
the format check run here as plain calls.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute, Match
from starlette.types import Receive, Scope, Send

from service.fhir.endpoints import TABLE, Endpoint, EndpointTable, Matched, NotAllowed

_MATCH = "ipt_fhir.match"

# The access check: given the request's scope, its match and its `receive`, it refuses (raising a
# `FhirError`) or returns the `receive` the route is to read the body from.
Guard = Callable[[Scope, Matched, Receive], Awaitable[Receive]]


def route_path(scope: Scope) -> str:
    """The path the routes see: the request's, less the `root_path` the server may be mounted under (as
    Starlette's routes read it)."""
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    if root_path and path.startswith(root_path + "/"):
        return path[len(root_path) :]
    return path


def request_match(scope: Scope, table: EndpointTable = TABLE) -> Matched | NotAllowed | None:
    """The request's entry in the table, looked up once per path and kept in its scope."""
    path = route_path(scope)
    kept = scope.get(_MATCH)
    if kept is not None and kept[0] == path:
        found: Matched | NotAllowed | None = kept[1]
        return found
    found = table.match(scope["method"], path)
    scope[_MATCH] = (path, found)
    return found


class EndpointRoutes(BaseRoute):
    """The routes of every entry of `table` under `prefix`, as one route of the application's router."""

    def __init__(
        self,
        prefix: str,
        routes: Iterable[APIRoute],
        guard: Guard,
        checks: Iterable[Callable[[Scope], None]] = (),
        table: EndpointTable = TABLE,
    ) -> None:
        self.prefix = prefix
        self._below = prefix + "/"
        self.table = table
        self.guard = guard
        self.checks = tuple(checks)
        self.routes = list(routes)
        self.route_of = bind(prefix, self.routes, table.endpoints)

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http":
            return Match.NONE, {}
        path = route_path(scope)
        if path != self.prefix and not path.startswith(self._below):
            return Match.NONE, {}
        found = request_match(scope, self.table)
        if found is None:
            return Match.NONE, {}
        if isinstance(found, NotAllowed):
            return Match.PARTIAL, {}
        route = self.route_of[found.endpoint]
        return Match.FULL, {"endpoint": route.endpoint, "path_params": found.path_params, "route": route}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = request_match(scope, self.table)
        if isinstance(found, NotAllowed):
            raise HTTPException(status_code=405, headers={"Allow": ", ".join(found.allowed)})
        assert found is not None
        if not found.endpoint.public:
            receive = await self.guard(scope, found, receive)
        for check in self.checks:
            check(scope)
        await self.route_of[found.endpoint].handle(scope, receive, send)


def bind(prefix: str, routes: Iterable[APIRoute], endpoints: Iterable[Endpoint]) -> dict[Endpoint, APIRoute]:
    """Each entry under `prefix` with the route that answers it; a route without an entry, or an entry
    without a route, is an error when the application is built, not a 404 found later."""
    by_key: dict[tuple[str, str], APIRoute] = {}
    for route in routes:
        for method in route.methods or ():
            if method == "HEAD":
                continue
            if (method, route.path) in by_key:
                raise ValueError(f"two routes answer {method} {route.path}")
            by_key[(method, route.path)] = route
    bound: dict[Endpoint, APIRoute] = {}
    for endpoint in endpoints:
        if endpoint.path != prefix and not endpoint.path.startswith(prefix + "/"):
            continue
        if endpoint.key not in by_key:
            raise ValueError(f"no route answers {endpoint.method} {endpoint.path}")
        bound[endpoint] = by_key.pop(endpoint.key)
    if by_key:
        raise ValueError(f"routes without an entry in the endpoint table: {sorted(by_key)}")
    return bound
