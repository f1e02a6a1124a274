"""What a URL is: one table of every endpoint the service answers under `/fhir` and `/ipt`, and the lookup
that finds a request's entry in it.

Each entry names its interaction (a code of https://hl7.org/fhir/R4/valueset-type-restful-interaction.html,
or `operation`), its resource type and its operation. The table is built from the registry of served types
and the operations; the application binds one route to each entry (and refuses to start if a route or an
entry is left over), the CapabilityStatement lists what the entries of a type make up, authorization asks
what an entry needs and the audit trail records the interaction of the entry it was given. A request is
matched once, by walking a tree of path segments, not by trying routes in turn; nothing reads the raw path
again to tell what the request is.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

from service.fhir.access import AUDIT_EVENT
from service.fhir.operation_definitions import OPERATIONS, OperationSpec
from service.fhir.registry import RESOURCE_DEFINITIONS

Api = Literal["fhir", "ipt"]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One method on one path template (`/fhir/Patient/{resource_id}`)."""

    api: Api
    method: str
    path: str
    interaction: str
    resource_type: str | None = None
    operation: OperationSpec | None = None
    # Conditional update and delete: `PUT` or `DELETE [type]?criteria`.
    conditional: bool = False
    # The CapabilityStatement, readable without a token.
    public: bool = False

    @property
    def key(self) -> tuple[str, str]:
        return self.method, self.path

    @property
    def operation_code(self) -> str | None:
        return f"${self.operation.name}" if self.operation is not None else None


@dataclass(frozen=True, slots=True)
class Matched:
    """A request's entry in the table, and the values of the template's parameters."""

    endpoint: Endpoint
    path_params: dict[str, str]

    @property
    def resource_id(self) -> str | None:
        """The id of the one resource the request names, if it names one."""
        return self.path_params.get("resource_id") or self.path_params.get("plan_id")


@dataclass(frozen=True, slots=True)
class NotAllowed:
    """The path is served, but not with this method."""

    allowed: tuple[str, ...]


def _resource_endpoints(name: str, interactions: tuple[str, ...]) -> Iterator[Endpoint]:
    base = f"/fhir/{name}"
    instance = f"{base}/{{resource_id}}"
    by_interaction = {
        "read": [Endpoint("fhir", "GET", instance, "read", name)],
        "vread": [Endpoint("fhir", "GET", f"{instance}/_history/{{version_id}}", "vread", name)],
        "update": [
            Endpoint("fhir", "PUT", instance, "update", name),
            Endpoint("fhir", "PUT", base, "update", name, conditional=True),
        ],
        "delete": [
            Endpoint("fhir", "DELETE", instance, "delete", name),
            Endpoint("fhir", "DELETE", base, "delete", name, conditional=True),
        ],
        "history-instance": [Endpoint("fhir", "GET", f"{instance}/_history", "history-instance", name)],
        "history-type": [Endpoint("fhir", "GET", f"{base}/_history", "history-type", name)],
        "create": [Endpoint("fhir", "POST", base, "create", name)],
    }
    for interaction in interactions:
        yield from by_interaction[interaction]
    if "update" in interactions:
        yield Endpoint("fhir", "PATCH", instance, "patch", name)
    yield Endpoint("fhir", "GET", base, "search-type", name)
    yield Endpoint("fhir", "POST", f"{base}/_search", "search-type", name)
    for operation in OPERATIONS:
        if not operation.applies_to(name):
            continue
        for method in operation.type_methods:
            yield Endpoint("fhir", method, f"{base}/${operation.name}", "operation", name, operation)
        for method in operation.instance_methods:
            yield Endpoint("fhir", method, f"{instance}/${operation.name}", "operation", name, operation)


def _all_endpoints() -> Iterator[Endpoint]:
    yield Endpoint("fhir", "GET", "/fhir/metadata", "capabilities", public=True)
    # Batch and transaction share the endpoint; the Bundle's type tells them apart.
    yield Endpoint("fhir", "POST", "/fhir", "transaction")
    yield Endpoint("fhir", "GET", "/fhir", "search-system")
    yield Endpoint("fhir", "GET", "/fhir/_history", "history-system")
    # The audit trail is written by the server alone.
    yield Endpoint("fhir", "GET", f"/fhir/{AUDIT_EVENT}/{{resource_id}}", "read", AUDIT_EVENT)
    yield Endpoint("fhir", "GET", f"/fhir/{AUDIT_EVENT}", "search-type", AUDIT_EVENT)
    for spec in RESOURCE_DEFINITIONS:
        yield from _resource_endpoints(spec.name, spec.interactions)
    # The IPT treatment-plan API: a plan is its CarePlan and what the CarePlan refers to.
    plans = "/ipt/treatment-plans"
    yield Endpoint("ipt", "POST", f"{plans}/$from-careplan", "operation", "CarePlan")
    yield Endpoint("ipt", "POST", plans, "create", "CarePlan")
    yield Endpoint("ipt", "GET", plans, "search-type", "CarePlan")
    yield Endpoint("ipt", "GET", f"{plans}/{{plan_id}}", "read", "CarePlan")
    yield Endpoint("ipt", "PUT", f"{plans}/{{plan_id}}", "update", "CarePlan")


ENDPOINTS: tuple[Endpoint, ...] = tuple(_all_endpoints())


@dataclass(slots=True)
class _Node:
    """A path segment: literal children, one parameter child, and the endpoints ending here by method."""

    literals: dict[str, _Node] = field(default_factory=dict)
    parameter: _Node | None = None
    parameter_name: str = ""
    endpoints: dict[str, Endpoint] = field(default_factory=dict)


class EndpointTable:
    """Endpoints found by their path's segments.

    Where a literal segment (`_history`, `$validate`) and a parameter (`{resource_id}`) both fit, the
    literal is tried first, as the routes were once ordered: a path whose literal branch does not take the
    request's method (`GET /fhir/Patient/_search`) falls to the parameter, which answers 400 for an id that
    is not one, rather than 405.
    """

    def __init__(self, endpoints: tuple[Endpoint, ...]) -> None:
        self.endpoints = endpoints
        self._root = _Node()
        self._parameters: dict[Endpoint, list[str]] = {}
        for endpoint in endpoints:
            template = _segments(endpoint.path)
            if template is None:
                raise ValueError(f"{endpoint.path} is not a path template")
            self._parameters[endpoint] = [s[1:-1] for s in template if s.startswith("{")]
            node = self._root
            for segment in template:
                if segment.startswith("{"):
                    name = segment[1:-1]
                    if node.parameter is None:
                        node.parameter = _Node()
                        node.parameter_name = name
                    elif node.parameter_name != name:
                        raise ValueError(f"{endpoint.path}: parameter {name} where another is named")
                    node = node.parameter
                else:
                    node = node.literals.setdefault(segment, _Node())
            if endpoint.method in node.endpoints:
                raise ValueError(f"{endpoint.method} {endpoint.path} is in the table twice")
            node.endpoints[endpoint.method] = endpoint

    def match(self, method: str, path: str) -> Matched | NotAllowed | None:
        """The entry of `method` on `path` (`/fhir/Patient/123`); `NotAllowed` when the path is served with
        other methods only; None when it is not served."""
        segments = _segments(path)
        if segments is None:
            return None
        first: tuple[_Node, list[str]] | None = None
        for node, values in _ends(self._root, segments, 0, []):
            endpoint = node.endpoints.get(method)
            if endpoint is not None:
                return Matched(endpoint, dict(zip(self._parameters[endpoint], values, strict=True)))
            if first is None:
                first = node, values
        if first is None:
            return None
        return NotAllowed(tuple(first[0].endpoints))


def _segments(path: str) -> list[str] | None:
    """The segments of an absolute path; None for a path with an empty segment (`//`, a trailing `/`),
    which no route takes."""
    parts = path.split("/")[1:]
    if not path.startswith("/") or not all(parts):
        return None
    return parts


def _ends(
    node: _Node, segments: list[str], index: int, values: list[str]
) -> Iterator[tuple[_Node, list[str]]]:
    """The nodes `segments[index:]` lead to from `node` that some endpoint ends at, literal branches first."""
    if index == len(segments):
        if node.endpoints:
            yield node, values
        return
    segment = segments[index]
    literal = node.literals.get(segment)
    if literal is not None:
        yield from _ends(literal, segments, index + 1, values)
    if node.parameter is not None:
        yield from _ends(node.parameter, segments, index + 1, [*values, segment])


TABLE = EndpointTable(ENDPOINTS)


def match(method: str, path: str) -> Matched | NotAllowed | None:
    return TABLE.match(method, path)


def endpoints_of(resource_type: str) -> list[Endpoint]:
    """The FHIR endpoints of one type, in the table's order."""
    return [e for e in ENDPOINTS if e.api == "fhir" and e.resource_type == resource_type]
