"""Content negotiation: JSON in, FHIR JSON out (https://hl7.org/fhir/R4/http.html#mime-type)."""

from fastapi import Request
from starlette.types import Scope

from service.errors import Issue, NotAcceptable, UnsupportedMediaType

FHIR_JSON = "application/fhir+json"
JSON_PATCH = "application/json-patch+json"

_JSON_TYPES = {FHIR_JSON, "application/json", "text/json"}
_FORMAT_ALIASES = {"json", "application/json", "application/fhir+json", "text/json"}
_ACCEPTABLE = _JSON_TYPES | {"*/*", "application/*", "text/*"}


def _media_types(header: str) -> list[tuple[str, float]]:
    types = []
    for part in header.split(","):
        pieces = [p.strip() for p in part.split(";")]
        if not pieces[0]:
            continue
        quality = 1.0
        for parameter in pieces[1:]:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        types.append((pieces[0].lower(), quality))
    return types


FORMAT_PARAMETER = {
    "name": "_format",
    "in": "query",
    "required": False,
    "schema": {"type": "string"},
    "description": "Overrides the Accept header: `json`, `application/json` or `application/fhir+json`.",
}


def check_response_format(scope: Scope) -> None:
    """Refuse (406) a request that will only take a format other than JSON (`_format`, or else `Accept`)."""
    request = Request(scope)
    format_ = request.query_params.get("_format")
    if format_ is not None:
        if format_.strip().lower() not in _FORMAT_ALIASES:
            raise NotAcceptable(
                Issue(
                    f"_format={format_!r} is not served; this server answers JSON only", expression="_format"
                )
            )
        return
    accept = request.headers.get("accept")
    if not accept:
        return
    offered = _media_types(accept)
    if offered and not any(kind in _ACCEPTABLE and quality > 0 for kind, quality in offered):
        raise NotAcceptable(
            Issue(f"Accept: {accept} cannot be met; this server answers {FHIR_JSON}", expression="Accept")
        )


def check_request_format(request: Request, *, allowed: frozenset[str] = frozenset(_JSON_TYPES)) -> None:
    """Refuse (415) a body that is not JSON: XML, a form or anything else."""
    content_type = request.headers.get("content-type")
    if content_type is None:
        return
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind not in allowed:
        raise UnsupportedMediaType(
            Issue(
                f"Content-Type {kind or content_type!r} is not accepted; send {FHIR_JSON}",
                expression="Content-Type",
            )
        )
