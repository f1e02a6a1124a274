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
from service.errors import BadRequest, InvalidCode, InvalidResource, Issue
from service.fhir.bindings import check_required_bindings

ID_PATTERN = re.compile(r"[A-Za-z0-9\-.]{1,64}")

_MESSAGES = {
    "extra_forbidden": "unknown element",
    "missing": "required element is missing",
}


# JSON can smuggle NUL into a string only as this escape: orjson refuses a raw control character.
_NUL_ESCAPE = b"\\u0000"


def loads(body: bytes, *, root: str = "body") -> Any:
    """Decode JSON as `orjson.loads` does (raising `orjson.JSONDecodeError` when it is broken), and refuse
    (400) a string or name holding NUL, naming the element.

    PostgreSQL stores neither `text` nor `jsonb` with NUL in it: such a body must stop here, before any
    write, rather than fail in the database. Every request body goes through this function.
    """
    payload = orjson.loads(body)
    # The byte search costs next to nothing; the walk runs only when an escape may be there
    # (`\\u0000`, an escaped backslash before `u0000`, matches too, and the walk then finds nothing).
    if _NUL_ESCAPE in body and (where := _nul_location(payload, root)) is not None:
        raise BadRequest(
            Issue(
                f"{where}: a string holds a NUL character (\\u0000), which is not allowed",
                expression=where,
                code="value",
            )
        )
    return payload


def _nul_location(payload: Any, root: str) -> str | None:
    """The path of the first string (or member name) holding NUL, or None. Iterative: a body may nest as
    deep as the decoder allows, beyond Python's recursion limit."""
    if isinstance(payload, dict) and isinstance(resource_type := payload.get("resourceType"), str):
        root = resource_type
    pending: list[tuple[Any, str]] = [(payload, root)]
    while pending:
        value, path = pending.pop()
        if isinstance(value, str):
            if "\x00" in value:
                return path
        elif isinstance(value, dict):
            for name, item in reversed(value.items()):
                if "\x00" in name:
                    escaped = str(name).replace("\x00", "\\u0000")
                    return f"{path}.{escaped}"
                pending.append((item, f"{path}.{name}"))
        elif isinstance(value, list):
            pending.extend((item, f"{path}[{index}]") for index, item in reversed(list(enumerate(value))))
    return None


def parse_json(body: bytes) -> dict[str, Any]:
    """Decode a JSON object, or raise `InvalidResource` saying where the JSON broke."""
    if not body.strip():
        raise InvalidResource(Issue("the request body is empty; a FHIR resource in JSON is expected"))
    try:
        payload = loads(body)
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
