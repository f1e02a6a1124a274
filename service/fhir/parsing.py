"""From request bytes to a checked resource.

https://hl7.org/fhir/R4/json.html and https://hl7.org/fhir/R4/http.html#create: the body is JSON, its
`resourceType` matches the endpoint, its structure matches the R4 definition, and its required codes come
from their ValueSets. The server owns `meta.versionId` and `meta.lastUpdated`, so whatever a client sent
there is dropped.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
from pydantic import ValidationError

from mappings.r4 import model_class
from service.errors import InvalidCode, InvalidResource, Issue
from service.fhir.bindings import check_required_bindings

ID_PATTERN = re.compile(r"[A-Za-z0-9\-.]{1,64}")

_MESSAGES = {
    "extra_forbidden": "unknown element",
    "missing": "required element is missing",
}


def parse_json(body: bytes) -> dict[str, Any]:
    """Decode a JSON object, or raise `InvalidResource` saying where the JSON broke."""
    if not body.strip():
        raise InvalidResource(Issue("the request body is empty; a FHIR resource in JSON is expected"))
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidResource(Issue(f"the body is not valid JSON: {exc}", code="invalid")) from exc
    if not isinstance(payload, dict):
        raise InvalidResource(Issue("the body must be a JSON object holding one FHIR resource"))
    return payload


def is_valid_id(value: str) -> bool:
    return ID_PATTERN.fullmatch(value) is not None


def check_resource(resource_type: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Validate `payload` as a `resource_type` and return it unchanged but for server-owned `meta` fields."""
    found = payload.get("resourceType")
    if found != resource_type:
        raise InvalidResource(
            Issue(
                f"resourceType is {found!r} but this endpoint takes {resource_type}",
                expression=f"{resource_type}.resourceType",
                code="invalid",
            )
        )
    resource_id = payload.get("id")
    if resource_id is not None and not (isinstance(resource_id, str) and is_valid_id(resource_id)):
        raise InvalidResource(
            Issue(
                "id must be 1-64 characters of A-Z, a-z, 0-9, '-' and '.'",
                expression=f"{resource_type}.id",
                code="value",
            )
        )
    try:
        model = model_class(resource_type).model_validate(payload)
    except ValidationError as exc:
        raise InvalidResource(*_issues(resource_type, exc)) from exc
    except (TypeError, ValueError) as exc:
        raise InvalidResource(Issue(f"invalid {resource_type}: {exc}", expression=resource_type)) from exc
    if problems := check_required_bindings(model, resource_type):
        raise InvalidCode(*problems)
    return _without_server_meta(payload)


def _without_server_meta(payload: dict[str, Any]) -> dict[str, Any]:
    meta = payload.get("meta")
    if not isinstance(meta, dict) or not ({"versionId", "lastUpdated"} & meta.keys()):
        return payload
    cleaned = {k: v for k, v in meta.items() if k not in ("versionId", "lastUpdated")}
    result = dict(payload)
    if cleaned:
        result["meta"] = cleaned
    else:
        del result["meta"]
    return result


def _issues(resource_type: str, error: ValidationError) -> list[Issue]:
    issues = []
    for problem in error.errors(include_url=False):
        location = _fhirpath(resource_type, problem["loc"])
        message = _MESSAGES.get(problem["type"], problem["msg"])
        issues.append(Issue(f"{location}: {message}", expression=location))
    return issues


def _fhirpath(resource_type: str, loc: tuple[int | str, ...]) -> str:
    path = resource_type
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif not part.startswith(("function-", "list[", "union[")):
            path += f".{part}"
    return path
