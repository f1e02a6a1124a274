"""System-level interactions on `[base]`: batch and transaction Bundles (https://hl7.org/fhir/R4/http.html#transaction)
and the search across types (https://hl7.org/fhir/R4/http.html#search)."""

from typing import Annotated

from fastapi import APIRouter, Header, Request, Response

from service.api.deps import base_url_of, engine_of, settings_of
from service.api.negotiation import FHIR_JSON
from service.api.openapi_docs import bundle_response, error_responses
from service.api.responses import json_response, return_preference
from service.api.routes.resources import read_body
from service.api.routes.search import Prefer as SearchPrefer
from service.api.routes.search import parameter_docs, search_options
from service.fhir.transaction_examples import BATCH_EXAMPLE, TREATMENT_PLAN_TRANSACTION
from service.interactions.search import search_system
from service.interactions.transaction import process_bundle

Prefer = Annotated[
    str | None,
    Header(
        description="`return=representation` (default: each entry's resource is returned), `return=minimal` "
        "(status, location and etag only) or `return=OperationOutcome`."
    ),
]

_BUNDLE_SCHEMA = {
    "type": "object",
    "title": "Bundle (batch or transaction)",
    "description": "https://hl7.org/fhir/R4/bundle.html; every entry needs a `request`.",
    "required": ["resourceType", "type"],
    "properties": {
        "resourceType": {"type": "string", "enum": ["Bundle"]},
        "type": {"type": "string", "enum": ["batch", "transaction"]},
        "entry": {"type": "array", "items": {"type": "object"}},
    },
}

_DESCRIPTION = """
**transaction**: every entry or none. Entries are processed DELETE, POST, PUT/PATCH, GET; `urn:uuid:` and
`urn:oid:` fullUrls are replaced by the ids the server assigns wherever the Bundle refers to them;
`ifNoneExist`, `ifMatch` and conditional URLs (`PUT Patient?identifier=...`) are honoured. If any entry
fails, the answer is that entry's 4xx OperationOutcome (its `expression` starts with `Bundle.entry[i]`) and
nothing is written.

**batch**: each entry on its own; each gets its own response (or OperationOutcome) in the
`batch-response`, and one failure does not affect the others.

Checked for both: `Bundle.type`, a `request` on every entry, unique `fullUrl`s, at most
`IPT_FHIR_MAX_BUNDLE_ENTRIES` entries (413 beyond) and the body size limit (413); for a transaction also
that no two entries change the same resource.
"""


router = APIRouter(prefix="/fhir")


@router.post(
    "",
    tags=["System"],
    summary="Batch or transaction",
    description=_DESCRIPTION,
    operation_id="batch_or_transaction",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                FHIR_JSON: {
                    "schema": _BUNDLE_SCHEMA,
                    "examples": {
                        "treatment-plan": {
                            "summary": "A whole IPT treatment plan in one transaction",
                            "value": TREATMENT_PLAN_TRANSACTION,
                        },
                        "batch": {"summary": "Two independent requests", "value": BATCH_EXAMPLE},
                    },
                },
                "application/json": {"schema": _BUNDLE_SCHEMA},
            },
        }
    },
    responses={
        200: {
            "description": "A `transaction-response` or `batch-response` Bundle in request order",
            "content": {FHIR_JSON: {"schema": {"$ref": "#/components/schemas/Bundle"}}},
        },
        **error_responses(400, 404, 406, 409, 410, 412, 413, 415, 422),
    },
    response_class=Response,
)
async def batch_or_transaction(request: Request, prefer: Prefer = None) -> Response:
    engine = engine_of(request)
    settings = settings_of(request)
    base_url = base_url_of(request)
    payload = await read_body(request, settings.max_body_bytes)
    body = await process_bundle(
        engine,
        payload,
        base_url=base_url,
        max_entries=settings.max_bundle_entries,
        prefer=return_preference(prefer),
    )
    return json_response(body)


_COMMON_PARAMETERS = ("_id", "_lastUpdated", "_tag", "_profile", "_security")
_RESULT_PARAMETERS = ("_count", "_sort", "_total", "_summary", "_elements", "_cursor")
_TYPE_PARAMETER = {
    "name": "_type",
    "in": "query",
    "required": False,
    "schema": {"type": "string"},
    "description": "Comma-separated resource types to search (default: every type but AuditEvent).",
}


@router.get(
    "",
    tags=["System"],
    summary="Search across resource types",
    description="The parameters every type has (`_id`, `_lastUpdated`, `_tag`, `_profile`, `_security`), "
    "over the types in `_type`. The audit trail is searched only when `_type` names AuditEvent.",
    operation_id="search_system",
    openapi_extra={
        "parameters": [
            _TYPE_PARAMETER,
            *(p for p in parameter_docs("Patient") if p["name"] in _COMMON_PARAMETERS + _RESULT_PARAMETERS),
        ]
    },
    responses={**bundle_response("searchset"), **error_responses(400, 406)},
    response_class=Response,
)
async def system_search(request: Request, prefer: SearchPrefer = None) -> Response:
    engine = engine_of(request)
    settings = settings_of(request)
    base_url = base_url_of(request)
    options = search_options(settings, base_url, prefer)
    return json_response(await search_system(engine, request.query_params.multi_items(), options))
