"""The RESTful interactions of every served type, generated from the registry.

Each route translates HTTP to one interaction call and the result (or a `FhirError`) back to HTTP; the FHIR
rules live in `service.fhir` and `service.interactions`.
"""

import re
from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Path, Query, Request, Response

from service.api.deps import base_url_of, engine_of, settings_of
from service.api.negotiation import FHIR_JSON, JSON_PATCH, check_request_format
from service.api.openapi_docs import (
    bundle_response,
    error_responses,
    resource_request_body,
    resource_response,
)
from service.api.responses import json_response, return_preference, version_headers, write_response
from service.errors import BadRequest, InvalidResource, Issue, PayloadTooLarge, operation_outcome
from service.fhir.parsing import check_resource, loads, parse_json
from service.fhir.registry import RESOURCE_DEFINITIONS, ResourceDefinition
from service.fhir.transaction_examples import FHIRPATH_PATCH_EXAMPLE, JSON_PATCH_EXAMPLE
from service.interactions.conditional import (
    Criteria,
    create_conditionally,
    delete_conditionally,
    parse_criteria,
    update_conditionally,
)
from service.interactions.create import create_resource
from service.interactions.delete import delete_resource
from service.interactions.history import HistoryQuery, history
from service.interactions.patch import PatchFormat, patch_resource
from service.interactions.read import read_resource
from service.interactions.update import update_resource
from service.interactions.vread import vread_resource
from service.storage.repository import StoredVersion

ID_PATTERN = r"^[A-Za-z0-9\-.]{1,64}$"
_ETAG = re.compile(r'^\s*(?:W/)?"?(\d+)"?\s*$')

ResourceId = Annotated[
    str, Path(pattern=ID_PATTERN, description="Logical id of the resource.", examples=["example"])
]
Prefer = Annotated[
    str | None,
    Header(description="`return=minimal`, `return=representation` (default) or `return=OperationOutcome`."),
]
IfMatch = Annotated[
    str | None,
    Header(alias="If-Match", description='The version the change is based on, as its ETag (`W/"3"`).'),
]
IfNoneExist = Annotated[
    str | None,
    Header(
        alias="If-None-Exist",
        description="Conditional create: search parameters (`identifier=http://hospital.example/mrn|12345`). "
        "No match creates (201); one match returns it and writes nothing (200); several are refused (412).",
    ),
]
Count = Annotated[int | None, Query(alias="_count", ge=1, description="Entries per page.")]
_JSON_BODIES = frozenset({FHIR_JSON, "application/json", "text/json"})
Since = Annotated[
    datetime | None, Query(alias="_since", description="Only versions written at or after this instant.")
]
Cursor = Annotated[
    int | None,
    # Versions are numbered by a BIGINT sequence: a larger number is no position the server handed out.
    Query(
        alias="_cursor", ge=1, le=2**63 - 1, description="Opaque paging position, taken from a `next` link."
    ),
]


def parse_if_match(value: str | None) -> int | None:
    if value is None:
        return None
    match = _ETAG.match(value)
    if match is None:
        raise BadRequest(
            Issue(f'If-Match must be an ETag such as W/"3", not {value!r}', expression="If-Match")
        )
    return int(match.group(1))


async def read_raw_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(Issue(f"the body is larger than the limit of {limit} bytes"))
    body = await request.body()
    if len(body) > limit:
        raise PayloadTooLarge(Issue(f"the body is larger than the limit of {limit} bytes"))
    return body


async def read_body(request: Request, limit: int) -> dict[str, Any]:
    check_request_format(request)
    raw = await read_raw_body(request, limit)
    # The access check of `POST /fhir` has parsed the Bundle already (see `require_fhir_access`).
    parsed = getattr(request.state, "json_body", None)
    return parsed if isinstance(parsed, dict) else parse_json(raw)


async def read_patch(request: Request, limit: int) -> tuple[PatchFormat, Any]:
    """A JSON Patch array (`application/json-patch+json`) or a FHIRPath Patch `Parameters` resource."""
    check_request_format(request, allowed=_JSON_BODIES | {JSON_PATCH})
    kind = (request.headers.get("content-type") or "").split(";", 1)[0].strip().lower()
    body = await read_raw_body(request, limit)
    try:
        payload = loads(body, root="JsonPatch")
    except orjson.JSONDecodeError as exc:
        raise BadRequest(Issue(f"the body is not valid JSON: {exc}", expression="body")) from exc
    if isinstance(payload, list):
        return "json-patch", payload
    if kind == JSON_PATCH:
        raise BadRequest(Issue("a JSON Patch body is a JSON array of operations", expression="JsonPatch"))
    if isinstance(payload, dict) and payload.get("resourceType") == "Parameters":
        return "fhirpath-patch", payload
    raise BadRequest(
        Issue(
            "PATCH takes a JSON Patch array (application/json-patch+json) "
            "or a FHIRPath Patch Parameters resource (application/fhir+json)",
            expression="body",
        )
    )


def query_criteria(request: Request, name: str) -> Criteria:
    """The search parameters of a conditional update or delete, from the query string."""
    pairs = tuple(
        (key, value) for key, value in request.query_params.multi_items() if key not in ("_format", "_pretty")
    )
    if not pairs:
        raise BadRequest(
            Issue(
                f"a conditional update or delete on {name} needs search parameters ({name}?identifier=...)",
                expression="criteria",
            )
        )
    return pairs


def _written(stored: StoredVersion, name: str, base_url: str, prefer: str | None) -> Response:
    return write_response(
        stored,
        status_code=201 if stored.created else 200,
        base_url=base_url,
        prefer=prefer,
        message=f"{'created' if stored.created else 'updated'} {name}/{stored.id}"
        + ("" if stored.changed else " (no change)"),
    )


def _patch_request_body() -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {
                JSON_PATCH: {
                    "schema": {"type": "array", "items": {"type": "object"}},
                    "example": JSON_PATCH_EXAMPLE,
                },
                FHIR_JSON: {
                    "schema": {
                        "type": "object",
                        "title": "Parameters",
                        "description": "FHIRPath Patch: https://hl7.org/fhir/R4/fhirpatch.html",
                        "required": ["resourceType", "parameter"],
                        "properties": {
                            "resourceType": {"type": "string", "enum": ["Parameters"]},
                            "parameter": {"type": "array", "items": {"type": "object"}},
                        },
                    },
                    "example": FHIRPATH_PATCH_EXAMPLE,
                },
            },
        }
    }


def history_query(
    settings: Any, count: int | None, since: datetime | None, cursor: int | None
) -> HistoryQuery:
    if since is not None and since.tzinfo is None:
        raise BadRequest(Issue("_since must be an instant with a time zone", expression="_since"))
    size = min(count or settings.default_page_size, settings.max_page_size)
    return HistoryQuery(count=size, since=since, cursor=cursor)


def add_resource_routes(router: APIRouter, spec: ResourceDefinition) -> None:
    name = spec.name
    tags: list[str | Any] = [name]

    @router.get(
        f"/{name}/_history",
        tags=tags,
        summary=f"History of all {name} resources",
        operation_id=f"history_type_{name}",
        responses={**bundle_response("history"), **error_responses(400, 406)},
        response_class=Response,
    )
    async def history_type(
        request: Request, count: Count = None, since: Since = None, cursor: Cursor = None
    ) -> Response:
        engine = engine_of(request)
        settings = settings_of(request)
        base_url = base_url_of(request)
        query = history_query(settings, count, since, cursor)
        return json_response(await history(engine, query, base_url=base_url, resource_type=name))

    @router.post(
        f"/{name}",
        tags=tags,
        summary=f"Create a {name}",
        description="The server assigns the id; a sent `id`, `versionId` or `lastUpdated` is ignored. "
        "With `If-None-Exist` the create is conditional "
        "([spec](https://hl7.org/fhir/R4/http.html#ccreate)): a retried submission does not duplicate. "
        "Literal references to resources served here must exist (422 otherwise).",
        operation_id=f"create_{name}",
        status_code=201,
        openapi_extra=resource_request_body(name),
        responses={
            **resource_response(name, 201, "Created"),
            **resource_response(name, 200, "`If-None-Exist` matched this resource; nothing was written"),
            **error_responses(400, 406, 412, 413, 415, 422),
        },
        response_class=Response,
    )
    async def create(request: Request, prefer: Prefer = None, if_none_exist: IfNoneExist = None) -> Response:
        engine = engine_of(request)
        settings = settings_of(request)
        base_url = base_url_of(request)
        content = check_resource(name, await read_body(request, settings.max_body_bytes))
        if if_none_exist is not None:
            criteria = parse_criteria(if_none_exist, name, expression="If-None-Exist")
            stored = await create_conditionally(engine, name, content, criteria, base_url=base_url)
            if not stored.created:
                return write_response(
                    stored,
                    status_code=200,
                    base_url=base_url,
                    prefer=prefer,
                    message=f"{name}/{stored.id} matches If-None-Exist; nothing was created",
                )
        else:
            stored = await create_resource(engine, name, content)
        return write_response(
            stored, status_code=201, base_url=base_url, prefer=prefer, message=f"created {name}/{stored.id}"
        )

    @router.put(
        f"/{name}",
        tags=tags,
        summary=f"Conditional update of a {name}",
        description=f"`PUT /fhir/{name}?[search parameters]` "
        "([spec](https://hl7.org/fhir/R4/http.html#cond-update)): no match creates the resource (with the "
        "body's id if it has one, 201); one match updates it (200); several are refused (412). Supported "
        "criteria: token, reference, uri and string parameters (`identifier=system|value`, `_id`).",
        operation_id=f"conditional_update_{name}",
        openapi_extra=resource_request_body(name),
        responses={
            **resource_response(name, 200, "The matching resource, updated"),
            **resource_response(name, 201, "No match: created"),
            **error_responses(400, 406, 412, 413, 415, 422),
        },
        response_class=Response,
    )
    async def conditional_update(
        request: Request, prefer: Prefer = None, if_match: IfMatch = None
    ) -> Response:
        engine = engine_of(request)
        settings = settings_of(request)
        base_url = base_url_of(request)
        criteria = query_criteria(request, name)
        version = parse_if_match(if_match)
        content = check_resource(name, await read_body(request, settings.max_body_bytes))
        stored = await update_conditionally(
            engine, name, content, criteria, if_match=version, base_url=base_url
        )
        return _written(stored, name, base_url, prefer)

    @router.delete(
        f"/{name}",
        tags=tags,
        summary=f"Conditional delete of a {name}",
        description=f"`DELETE /fhir/{name}?[search parameters]` "
        "([spec](https://hl7.org/fhir/R4/http.html#cdelete)): exactly one match is deleted; no match is 404, "
        "several are 412 (`conditionalDelete = single`). A resource still referenced by others is not "
        "deleted (409).",
        operation_id=f"conditional_delete_{name}",
        status_code=204,
        responses={
            204: {"description": "Deleted"},
            **resource_response("OperationOutcome", 200, "Deleted, with `Prefer: return=OperationOutcome`"),
            **error_responses(400, 404, 406, 409, 412),
        },
        response_class=Response,
    )
    async def conditional_delete(
        request: Request, prefer: Prefer = None, if_match: IfMatch = None
    ) -> Response:
        engine = engine_of(request)
        base_url = base_url_of(request)
        criteria = query_criteria(request, name)
        deleted = await delete_conditionally(
            engine, name, criteria, if_match=parse_if_match(if_match), base_url=base_url
        )
        return _deleted(deleted, name, prefer)

    @router.get(
        f"/{name}/{{resource_id}}",
        tags=tags,
        summary=f"Read a {name}",
        operation_id=f"read_{name}",
        responses={
            **resource_response(name, 200, "The current version"),
            **error_responses(400, 404, 406, 410),
        },
        response_class=Response,
    )
    async def read(resource_id: ResourceId, request: Request) -> Response:
        engine = engine_of(request)
        base_url = base_url_of(request)
        stored = await read_resource(engine, name, resource_id)
        assert stored.content is not None
        return json_response(stored.content, headers=version_headers(stored, base_url=base_url))

    @router.put(
        f"/{name}/{{resource_id}}",
        tags=tags,
        summary=f"Update (or create with this id) a {name}",
        description="The body's `id` must equal the URL's. With `If-Match`, a stale version gets 412.",
        operation_id=f"update_{name}",
        openapi_extra=resource_request_body(name),
        responses={
            **resource_response(name, 200, "Updated (or unchanged)"),
            **resource_response(name, 201, "Created with the id of the URL"),
            **error_responses(400, 406, 412, 413, 415, 422),
        },
        response_class=Response,
    )
    async def update(
        resource_id: ResourceId, request: Request, prefer: Prefer = None, if_match: IfMatch = None
    ) -> Response:
        engine = engine_of(request)
        settings = settings_of(request)
        base_url = base_url_of(request)
        version = parse_if_match(if_match)
        content = check_resource(name, await read_body(request, settings.max_body_bytes))
        body_id = content.get("id")
        if body_id is None:
            raise InvalidResource(
                Issue(
                    "an update must carry the resource's id in the body",
                    expression=f"{name}.id",
                    code="required",
                )
            )
        if body_id != resource_id:
            raise InvalidResource(
                Issue(
                    f"the body's id {body_id!r} differs from the URL's {resource_id!r}",
                    expression=f"{name}.id",
                )
            )
        stored = await update_resource(engine, name, resource_id, content, if_match=version)
        return _written(stored, name, base_url, prefer)

    @router.patch(
        f"/{name}/{{resource_id}}",
        tags=tags,
        summary=f"Patch a {name}",
        description="JSON Patch (`application/json-patch+json`, RFC 6902) or FHIRPath Patch (a `Parameters` "
        "body, [spec](https://hl7.org/fhir/R4/fhirpatch.html)) "
        "([spec](https://hl7.org/fhir/R4/http.html#patch)). The patched resource is validated exactly like "
        "the body of a PUT; a patch that cannot be applied (a missing path, a failed `test`) is 422 and "
        "writes nothing. With `If-Match`, a stale version gets 412.",
        operation_id=f"patch_{name}",
        openapi_extra=_patch_request_body(),
        responses={
            **resource_response(name, 200, "Patched"),
            **error_responses(400, 404, 406, 410, 412, 413, 415, 422),
        },
        response_class=Response,
    )
    async def patch(
        resource_id: ResourceId, request: Request, prefer: Prefer = None, if_match: IfMatch = None
    ) -> Response:
        engine = engine_of(request)
        settings = settings_of(request)
        base_url = base_url_of(request)
        version = parse_if_match(if_match)
        patch_format, body = await read_patch(request, settings.max_body_bytes)
        stored = await patch_resource(engine, name, resource_id, patch_format, body, if_match=version)
        return _written(stored, name, base_url, prefer)

    @router.delete(
        f"/{name}/{{resource_id}}",
        tags=tags,
        summary=f"Delete a {name}",
        description="Later reads answer 410 Gone; history keeps every version, the deletion included. "
        "A resource that others still reference is not deleted (409, naming some of them).",
        operation_id=f"delete_{name}",
        status_code=204,
        responses={
            204: {"description": "Deleted"},
            **resource_response("OperationOutcome", 200, "Deleted, with `Prefer: return=OperationOutcome`"),
            **error_responses(400, 404, 406, 409, 412),
        },
        response_class=Response,
    )
    async def delete(
        resource_id: ResourceId, request: Request, prefer: Prefer = None, if_match: IfMatch = None
    ) -> Response:
        engine = engine_of(request)
        deleted = await delete_resource(engine, name, resource_id, if_match=parse_if_match(if_match))
        return _deleted(deleted, name, prefer)

    @router.get(
        f"/{name}/{{resource_id}}/_history",
        tags=tags,
        summary=f"History of one {name}",
        operation_id=f"history_instance_{name}",
        responses={**bundle_response("history"), **error_responses(400, 404, 406)},
        response_class=Response,
    )
    async def history_instance(
        resource_id: ResourceId,
        request: Request,
        count: Count = None,
        since: Since = None,
        cursor: Cursor = None,
    ) -> Response:
        engine = engine_of(request)
        settings = settings_of(request)
        base_url = base_url_of(request)
        query = history_query(settings, count, since, cursor)
        return json_response(
            await history(engine, query, base_url=base_url, resource_type=name, resource_id=resource_id)
        )

    @router.get(
        f"/{name}/{{resource_id}}/_history/{{version_id}}",
        tags=tags,
        summary=f"Read one version of a {name}",
        operation_id=f"vread_{name}",
        responses={**resource_response(name, 200, "That version"), **error_responses(400, 404, 406, 410)},
        response_class=Response,
    )
    async def vread(
        resource_id: ResourceId,
        request: Request,
        version_id: Annotated[int, Path(ge=1, le=2_147_483_647, description="Version number.")],
    ) -> Response:
        engine = engine_of(request)
        base_url = base_url_of(request)
        stored = await vread_resource(engine, name, resource_id, version_id)
        assert stored.content is not None
        return json_response(stored.content, headers=version_headers(stored, base_url=base_url))


def _deleted(deleted: StoredVersion, name: str, prefer: str | None) -> Response:
    headers = {"ETag": f'W/"{deleted.version_id}"'}
    if return_preference(prefer) == "OperationOutcome":
        message = f"deleted {name}/{deleted.id}" + ("" if deleted.changed else " (it already was)")
        outcome = operation_outcome([Issue(message, severity="information")], default_code="informational")
        return json_response(outcome, headers=headers)
    return Response(status_code=204, headers=headers)


def build_router() -> APIRouter:
    router = APIRouter(prefix="/fhir")

    @router.get(
        "/_history",
        tags=["System"],
        summary="History of every resource on the server",
        operation_id="history_system",
        responses={**bundle_response("history"), **error_responses(400, 406)},
        response_class=Response,
    )
    async def history_system(
        request: Request, count: Count = None, since: Since = None, cursor: Cursor = None
    ) -> Response:
        engine = engine_of(request)
        settings = settings_of(request)
        base_url = base_url_of(request)
        query = history_query(settings, count, since, cursor)
        return json_response(await history(engine, query, base_url=base_url))

    for spec in RESOURCE_DEFINITIONS:
        add_resource_routes(router, spec)
    return router
