"""Search over HTTP: https://hl7.org/fhir/R4/http.html#search, https://hl7.org/fhir/R4/search.html

`GET [base]/[type]?...` and `POST [base]/[type]/_search` (the parameters in an
`application/x-www-form-urlencoded` body, added to any in the URL) behave the same; `GET [base]?_type=...`
searches across types. Parameters are read raw from the query string, because FHIR repeats them (AND) and
gives them modifiers (`name:exact`); the OpenAPI document lists them per type.
"""

from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Header, Request, Response

from service.api.deps import base_url_of, engine_of, settings_of
from service.api.openapi_docs import bundle_response, error_responses
from service.api.responses import json_response
from service.config import Settings
from service.errors import BadRequest, Issue, PayloadTooLarge, UnsupportedMediaType
from service.fhir.registry import RESOURCE_DEFINITIONS
from service.fhir.search_parameters import parameters_for
from service.interactions.search import SearchOptions, search_type

FORM = "application/x-www-form-urlencoded"

Prefer = Annotated[
    str | None,
    Header(
        description="`handling=strict` rejects (400) an unknown or unsupported parameter; by default "
        "(`handling=lenient`) it is ignored, left out of the `self` link and reported in an OperationOutcome "
        "entry (`search.mode = outcome`)."
    ),
]

_RESULT_PARAMETERS: list[tuple[str, dict[str, Any], str]] = [
    (
        "_count",
        {"type": "integer", "minimum": 0},
        "Matches per page (default 20, at most the server maximum).",
    ),
    ("_sort", {"type": "string"}, "Comma-separated sort keys; `-` for descending (`-authored,_id`)."),
    (
        "_total",
        {"type": "string", "enum": ["none", "estimate", "accurate"]},
        "Whether and how to count the matches (default `accurate`).",
    ),
    (
        "_summary",
        {"type": "string", "enum": ["true", "false", "data", "count"]},
        "Return summary elements only, everything but the narrative, or only the count.",
    ),
    ("_elements", {"type": "string"}, "Comma-separated top-level elements to return."),
    ("_include", {"type": "string"}, "`Type:parameter[:Target]` or `*`: add the resources referred to."),
    ("_revinclude", {"type": "string"}, "`Type:parameter[:Target]` or `*`: add the resources that refer."),
    ("_include:iterate", {"type": "string"}, "As `_include`, also applied to the included resources."),
    ("_revinclude:iterate", {"type": "string"}, "As `_revinclude`, also applied to the included resources."),
    (
        "_cursor",
        {"type": "string"},
        "Opaque paging position, taken unchanged from a `next` or `previous` link.",
    ),
]
_EXAMPLES = {
    "Patient": "`family=rivera`, `birthdate=ge1980`, `identifier=http://hospital.example/mrn|12345`",
    "CarePlan": "`patient=123&status=active&_include=CarePlan:care-team`",
    "QuestionnaireResponse": "`subject=Patient/123&_sort=-authored`, `authored=ge2025-01-01`",
    "Questionnaire": "`url=http://example.org/Questionnaire/phq-9`",
}


def parameter_docs(resource_type: str) -> list[dict[str, Any]]:
    documented = [
        {
            "name": code,
            "in": "query",
            "required": False,
            "schema": {"type": "string"},
            "description": f"{parameter.type} parameter ({parameter.url}); modifiers and prefixes as "
            "https://hl7.org/fhir/R4/search.html defines them.",
        }
        for code, parameter in parameters_for(resource_type).items()
    ]
    documented += [
        {"name": name, "in": "query", "required": False, "schema": schema, "description": description}
        for name, schema, description in _RESULT_PARAMETERS
    ]
    return documented


def _form_body(resource_type: str) -> dict[str, Any]:
    properties = {item["name"]: {"type": "string"} for item in parameter_docs(resource_type)}
    return {
        "requestBody": {
            "required": False,
            "content": {FORM: {"schema": {"type": "object", "properties": properties}}},
        }
    }


def search_options(settings: Settings, base_url: str, prefer: str | None) -> SearchOptions:
    strict = False
    for part in (prefer or "").split(","):
        name, _, value = part.strip().partition("=")
        if name.strip().lower() == "handling":
            strict = value.strip().strip('"').lower() == "strict"
    return SearchOptions(
        base_url=base_url,
        strict=strict,
        default_count=settings.default_page_size,
        max_count=settings.max_page_size,
    )


async def _form_parameters(request: Request, limit: int) -> list[tuple[str, str]]:
    body = await request.body()
    if len(body) > limit:
        raise PayloadTooLarge(Issue(f"the body is larger than the limit of {limit} bytes"))
    content_type = (request.headers.get("content-type") or "").split(";", 1)[0].strip().lower()
    if not body.strip():
        return []
    if content_type != FORM:
        raise UnsupportedMediaType(
            Issue(
                f"a _search body must be {FORM}, not {content_type or 'untyped'}", expression="Content-Type"
            )
        )
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest(Issue("the form body is not UTF-8", expression="Content-Type")) from None
    return parse_qsl(text, keep_blank_values=True)


def _add_type_routes(router: APIRouter, name: str) -> None:
    example = f" Examples: {_EXAMPLES[name]}." if name in _EXAMPLES else ""
    description = (
        "Comma = OR within a parameter, a repeated parameter = AND. Chains one level deep "
        "(`subject:Patient.name=…`) and `_has:Type:reference:parameter=…`." + example
    )

    @router.get(
        f"/{name}",
        tags=[name],
        summary=f"Search {name} resources",
        description=description,
        operation_id=f"search_{name}",
        openapi_extra={"parameters": parameter_docs(name)},
        responses={**bundle_response("searchset"), **error_responses(400, 406)},
        response_class=Response,
    )
    async def search_get(request: Request, prefer: Prefer = None) -> Response:
        engine = engine_of(request)
        settings = settings_of(request)
        base_url = base_url_of(request)
        options = search_options(settings, base_url, prefer)
        return json_response(await search_type(engine, name, request.query_params.multi_items(), options))

    @router.post(
        f"/{name}/_search",
        tags=[name],
        summary=f"Search {name} resources (parameters in a form body)",
        description="The same search as `GET`, for parameters too long or too sensitive for a URL. "
        + description,
        operation_id=f"search_post_{name}",
        openapi_extra=_form_body(name),
        responses={**bundle_response("searchset"), **error_responses(400, 406, 413, 415)},
        response_class=Response,
    )
    async def search_post(request: Request, prefer: Prefer = None) -> Response:
        engine = engine_of(request)
        settings = settings_of(request)
        base_url = base_url_of(request)
        options = search_options(settings, base_url, prefer)
        parameters = request.query_params.multi_items() + await _form_parameters(
            request, settings.max_body_bytes
        )
        return json_response(await search_type(engine, name, parameters, options))


def build_router() -> APIRouter:
    router = APIRouter(prefix="/fhir")
    for spec in RESOURCE_DEFINITIONS:
        _add_type_routes(router, spec.name)
    return router


router = build_router()
