"""`QuestionnaireResponse/$extract`: the Observations a completed response yields; nothing is stored.

SDC http://hl7.org/fhir/uv/sdc/OperationDefinition/QuestionnaireResponse-extract, observation-based
extraction (http://hl7.org/fhir/uv/sdc/extraction.html#observation-based-extraction): every item the form
marks with `sdc-questionnaire-observationExtract` and codes with LOINC becomes an Observation, and so does
the PHQ-9 total (LOINC 44261-6), computed from the chosen answers rather than copied from the submitted one.

- Instance level (`/QuestionnaireResponse/{id}/$extract`, GET or POST): the stored response. The Bundle
  entries are `PUT`s to the same Observation ids the server writes by itself when such a response is
  completed, so posting the Bundle again changes nothing (the ids are UUIDs: `fullUrl` is `urn:uuid:<id>`).
- Type level (`POST /QuestionnaireResponse/$extract`): the response in the body (or in a `Parameters` as
  `questionnaire-response`), checked exactly as a create would check it (422 when it would be refused);
  entries are `POST`s under `urn:uuid:` full URLs.

Output: `Parameters` with `return` (a transaction Bundle, possibly without entries) and `issues` (an
OperationOutcome, when there is something to say, such as "the response is not completed").
"""

from __future__ import annotations

import uuid
from typing import Final

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine

from service.errors import BadRequest, Gone, Issue, NotFound, Unprocessable
from service.fhir.parsing import check_resource
from service.interactions.questionnaire_response import (
    is_error,
    keyed_observations,
    questionnaire_response_issues,
    resolve_questionnaire,
    response_observations,
)
from service.operations.parameters import JSON, is_parameters, parameters_resource, read_parameters, single
from service.storage.repository import ResourceRepository

_PARAMETERS: Final = frozenset({"questionnaire-response"})
_FINISHED: Final = ("completed", "amended")


async def extract_stored(engine: AsyncEngine, response_id: str) -> JSON:
    """Extract from the stored `QuestionnaireResponse/{response_id}`."""
    async with engine.connect() as connection:
        repository = ResourceRepository(connection)
        stored = await repository.read("QuestionnaireResponse", response_id)
        if stored is None:
            raise NotFound(
                Issue(f"QuestionnaireResponse/{response_id} is not known", "QuestionnaireResponse")
            )
        if stored.deleted or stored.content is None:
            raise Gone(Issue(f"QuestionnaireResponse/{response_id} was deleted", "QuestionnaireResponse"))
        response: JSON = orjson.loads(stored.content)
        form = await _form(repository, response)
    entries = [
        {
            "fullUrl": f"urn:uuid:{key}",
            "resource": {**observation, "id": key},
            "request": {"method": "PUT", "url": f"Observation/{key}"},
        }
        for key, observation in keyed_observations(response, form).items()
    ]
    return _result(response, entries)


async def extract_submitted(engine: AsyncEngine, payload: JSON) -> JSON:
    """Extract from a response sent in the body, after checking it as a create would."""
    response_json = payload
    if is_parameters(payload):
        parameter = single(
            read_parameters(payload, known=_PARAMETERS, operation="$extract"), "questionnaire-response"
        )
        if parameter is None or parameter.resource is None:
            raise BadRequest(
                Issue(
                    "'questionnaire-response' must carry the QuestionnaireResponse to extract from",
                    parameter.expression if parameter is not None else "Parameters.parameter",
                    code="required",
                )
            )
        response_json = parameter.resource
    response = check_resource("QuestionnaireResponse", response_json)
    async with engine.connect() as connection:
        repository = ResourceRepository(connection)
        form = await _form(repository, response)
        issues = await questionnaire_response_issues(
            repository, response, previous=None, check_lifecycle=False
        )
    if any(is_error(issue) for issue in issues):
        raise Unprocessable(*issues)
    entries = [
        {
            "fullUrl": f"urn:uuid:{uuid.uuid4()}",
            "resource": observation,
            "request": {"method": "POST", "url": "Observation"},
        }
        for observation in response_observations(response, form)
    ]
    return _result(response, entries)


async def _form(repository: ResourceRepository, response: JSON) -> JSON:
    canonical = response.get("questionnaire")
    if not isinstance(canonical, str):
        raise Unprocessable(
            Issue(
                "The response cites no Questionnaire, so there is nothing to extract by",
                "QuestionnaireResponse.questionnaire",
                code="required",
            )
        )
    form = await resolve_questionnaire(repository, canonical)
    if form is None:
        raise Unprocessable(
            Issue(
                f"The worksheet '{canonical}' is not on this server",
                "QuestionnaireResponse.questionnaire",
                code="not-found",
            )
        )
    return form


def _result(response: JSON, entries: list[JSON]) -> JSON:
    bundle: JSON = {"resourceType": "Bundle", "type": "transaction"}
    if entries:
        bundle["entry"] = entries
    notes: list[Issue] = []
    if response.get("status") not in _FINISHED:
        notes.append(
            Issue(
                f"The response is {response.get('status')}; only a completed or amended response has results "
                "to extract",
                "QuestionnaireResponse.status",
                code="incomplete",
                severity="warning",
            )
        )
    elif not entries:
        notes.append(
            Issue(
                "The worksheet marks no answered item for extraction, so there are no Observations",
                "QuestionnaireResponse",
                code="informational",
                severity="information",
            )
        )
    outcome = {"resourceType": "OperationOutcome", "issue": [n.to_fhir("informational") for n in notes]}
    return parameters_resource(("return", bundle), ("issues", outcome if notes else None))
