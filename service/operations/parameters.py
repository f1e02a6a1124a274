"""Reading and writing the `Parameters` resource that carries operation inputs and outputs.

https://hl7.org/fhir/R4/parameters.html and https://hl7.org/fhir/R4/operations.html#request: each
`parameter` has a `name` and one of `value[x]`, `resource` or `part`. Problems with the envelope itself are
the client's (400), each naming the parameter it concerns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from service.errors import BadRequest, Issue

JSON = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Parameter:
    """One `Parameters.parameter`, with the FHIRPath of where it sat in the request."""

    name: str
    body: JSON
    expression: str

    @property
    def resource(self) -> JSON | None:
        found = self.body.get("resource")
        return found if isinstance(found, dict) else None

    def value(self, *keys: str) -> Any:
        """The `value[x]` under the first of `keys` present, or None."""
        return next((self.body[key] for key in keys if key in self.body), None)

    def value_key(self) -> str | None:
        return next((key for key in self.body if key.startswith("value")), None)

    @property
    def parts(self) -> list[Parameter]:
        found = self.body.get("part")
        if not isinstance(found, list):
            return []
        return [
            Parameter(str(part.get("name")), part, f"{self.expression}.part[{index}]")
            for index, part in enumerate(found)
            if isinstance(part, dict)
        ]


def is_parameters(payload: JSON) -> bool:
    return payload.get("resourceType") == "Parameters"


def read_parameters(payload: JSON, *, known: frozenset[str], operation: str) -> list[Parameter]:
    """The parameters of a `Parameters` body; an unknown or unnamed parameter is refused (400)."""
    items = payload.get("parameter", [])
    if not isinstance(items, list):
        raise BadRequest(Issue("Parameters.parameter must be a list", "Parameters.parameter"))
    found: list[Parameter] = []
    problems: list[Issue] = []
    for index, item in enumerate(items):
        expression = f"Parameters.parameter[{index}]"
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str) or not name:
            problems.append(Issue("every parameter needs a name", f"{expression}.name", code="required"))
            continue
        if name not in known:
            allowed = ", ".join(sorted(known))
            problems.append(
                Issue(
                    f"{operation} has no parameter '{name}' (it takes: {allowed})",
                    f"{expression}.name",
                    code="not-supported",
                )
            )
            continue
        assert isinstance(item, dict)
        found.append(Parameter(name, item, expression))
    if problems:
        raise BadRequest(*problems)
    return found


def single(parameters: list[Parameter], name: str) -> Parameter | None:
    """The one parameter called `name`; two of them are refused (400)."""
    named = [p for p in parameters if p.name == name]
    if len(named) > 1:
        raise BadRequest(Issue(f"the parameter '{name}' may be given only once", named[1].expression))
    return named[0] if named else None


def parameters_resource(*parameters: tuple[str, JSON | None]) -> JSON:
    """A `Parameters` resource with one resource-valued parameter per (name, resource); None is left out."""
    return {
        "resourceType": "Parameters",
        "parameter": [{"name": name, "resource": resource} for name, resource in parameters if resource],
    }
