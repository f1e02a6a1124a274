"""Requests are dispatched by their first path segments, not by trying every route in turn.

The FHIR routes are some two hundred: every served type has its interactions, search and operations. They are
grouped by the literal path they all begin with (`/fhir/Patient`, `/fhir/_history`), and a group turns away a
request whose path does not begin with its prefix by one string comparison: a request is matched against the
routes of its own type only. The routes themselves, their order within a type, and the OpenAPI document they
produce are unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable

from fastapi import APIRouter
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute, Match
from starlette.types import Scope


class PrefixRouter(APIRouter):
    """Routes that all begin with one literal path."""

    def __init__(self, path_prefix: str) -> None:
        super().__init__()
        self.path_prefix = path_prefix
        self._below = path_prefix + "/"

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        path = _route_path(scope)
        if path != self.path_prefix and not path.startswith(self._below):
            return Match.NONE, {}
        return super().matches(scope)


def _route_path(scope: Scope) -> str:
    """The path the routes see: the request's, less the `root_path` the server may be mounted under (as
    Starlette's routes read it)."""
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    if root_path and path.startswith(root_path + "/"):
        return path[len(root_path) :]
    return path


def grouped_by_first_segment(prefix: str, routers: Iterable[APIRouter]) -> list[APIRouter]:
    """The routes of `routers`, in their order, as one `PrefixRouter` per first path segment below `prefix`
    (the routers are to be included under `prefix`)."""
    groups: dict[str, PrefixRouter] = {}
    for router in routers:
        for route in router.routes:
            segment = _first_segment(route)
            group = groups.get(segment)
            if group is None:
                group = groups[segment] = PrefixRouter(f"{prefix}/{segment}")
            group.routes.append(route)
    return list(groups.values())


def _first_segment(route: BaseRoute) -> str:
    if not isinstance(route, APIRoute):
        raise TypeError(f"only API routes can be grouped, not {route!r}")
    segment = route.path.lstrip("/").split("/", 1)[0]
    if not segment or "{" in segment:
        raise ValueError(f"route {route.path} does not begin with a literal segment")
    return segment
