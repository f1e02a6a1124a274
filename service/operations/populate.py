"""`Questionnaire/$populate`: a response ready for a patient to fill in, pre-filled; nothing is stored.

SDC http://hl7.org/fhir/uv/sdc/OperationDefinition/Questionnaire-populate (http://hl7.org/fhir/uv/sdc/
populate.html). Inputs, in a `Parameters` body:

- the form: the instance of the URL (`/Questionnaire/{id}/$populate`), or at type level exactly one of
  `questionnaire` (the Questionnaire itself, or its canonical), `canonical` (`url` or `url|version`),
  `identifier` (an Identifier of the Questionnaire) or `questionnaireRef` (a Reference);
- `subject` (required): the Patient the response will be about;
- `context` with `name` = `user` and `content` a Reference: who fills it in (the response's `author`; the
  patient when absent). Other contexts and `local` are accepted and ignored.

Output: `Parameters` with `response` (an `in-progress` QuestionnaireResponse citing the form as
`url|version`, with `subject`, `author`, `authored`, and the answers of the patient's latest response to the
same worksheet wherever they still fit the form, else the form's initial values) and `issues` (an
OperationOutcome saying where the answers came from).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine

from service.errors import BadRequest, FhirError, Gone, Issue, NotFound, Unprocessable
from service.fhir.audit import note_read
from service.fhir.parsing import check_resource
from service.fhir.sdc import populate_response
from service.interactions.questionnaire_response import (
    AUTHOR_TYPES,
    resolve_questionnaire,
    resolve_reference,
)
from service.operations.parameters import (
    JSON,
    Parameter,
    is_parameters,
    parameters_resource,
    read_parameters,
    single,
)
from service.storage.lookups import find_by_identifier, latest_response
from service.storage.repository import ResourceRepository

_FORM_PARAMETERS: Final = ("questionnaire", "canonical", "identifier", "questionnaireRef")
_PARAMETERS: Final = frozenset({*_FORM_PARAMETERS, "subject", "context", "local", "content"})


async def populate(engine: AsyncEngine, payload: JSON, *, questionnaire_id: str | None = None) -> JSON:
    """Answer `$populate` for the form of the instance (`questionnaire_id`) or the one the body names."""
    if not is_parameters(payload):
        raise BadRequest(
            Issue(
                "$populate takes a Parameters resource (with at least 'subject')",
                "Parameters",
                code="invalid",
            )
        )
    parameters = read_parameters(payload, known=_PARAMETERS, operation="$populate")
    subject = single(parameters, "subject")
    if subject is None:
        raise BadRequest(
            Issue(
                "'subject' is required: the Patient the response will be about, as valueReference",
                "Parameters.parameter",
                code="required",
            )
        )
    user = _user_context(parameters)
    notes: list[Issue] = []
    async with engine.connect() as connection:
        repository = ResourceRepository(connection)
        form = await _form(repository, parameters, questionnaire_id)
        problems: list[Issue] = []
        patient = await resolve_reference(
            repository,
            subject.value("valueReference"),
            allowed=("Patient",),
            expression=f"{subject.expression}.valueReference",
            what="subject",
            issues=problems,
        )
        author = f"Patient/{patient.id}" if patient is not None else None
        if user is not None:
            found = await resolve_reference(
                repository,
                user.value("valueReference"),
                allowed=AUTHOR_TYPES,
                expression=f"{user.expression}.valueReference",
                what="user (the response's author)",
                issues=problems,
            )
            author = f"{found.resource_type}/{found.id}" if found is not None else None
        if problems or patient is None:
            raise Unprocessable(*problems)
        # The request's AuditEvent names whose data was read: the subject, and the response pre-filled from.
        note_read(f"Patient/{patient.id}")
        previous = None
        url = form.get("url")
        if isinstance(url, str):
            stored = await latest_response(connection, patient_id=patient.id, questionnaire_url=url)
            if stored is not None and stored.content is not None:
                note_read(f"QuestionnaireResponse/{stored.id}")
                previous = orjson.loads(stored.content)
                notes.append(
                    Issue(
                        f"Pre-filled with the answers of QuestionnaireResponse/{stored.id} (authored "
                        f"{previous.get('authored', 'at an unknown time')}) that still fit the form",
                        "QuestionnaireResponse.item",
                        code="informational",
                        severity="information",
                    )
                )
        else:
            notes.append(
                Issue(
                    "The Questionnaire has no url, so the response cannot cite it and cannot be stored",
                    "QuestionnaireResponse.questionnaire",
                    code="incomplete",
                    severity="warning",
                )
            )
    if previous is None:
        notes.append(
            Issue(
                f"Patient/{patient.id} has no earlier response to this worksheet; only the form's initial "
                "values are filled in",
                "QuestionnaireResponse.item",
                code="informational",
                severity="information",
            )
        )
    authored = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    response = populate_response(
        form, subject=f"Patient/{patient.id}", author=author, previous=previous, authored=authored
    )
    outcome = {"resourceType": "OperationOutcome", "issue": [n.to_fhir("informational") for n in notes]}
    return parameters_resource(("response", response), ("issues", outcome))


def _user_context(parameters: list[Parameter]) -> Parameter | None:
    for context in (p for p in parameters if p.name == "context"):
        parts = context.parts
        name = next(
            (part.value("valueString", "valueCode", "valueId") for part in parts if part.name == "name"), None
        )
        content = next((part for part in parts if part.name == "content"), None)
        if name == "user" and content is not None:
            return content
    return None


async def _form(
    repository: ResourceRepository, parameters: list[Parameter], questionnaire_id: str | None
) -> JSON:
    named = [p for p in parameters if p.name in _FORM_PARAMETERS]
    if questionnaire_id is not None:
        if named:
            raise BadRequest(
                Issue(
                    f"the URL already names Questionnaire/{questionnaire_id}; leave out '{named[0].name}'",
                    named[0].expression,
                    code="invalid",
                )
            )
        stored = await repository.read("Questionnaire", questionnaire_id)
        if stored is None:
            raise NotFound(Issue(f"Questionnaire/{questionnaire_id} is not known", "Questionnaire"))
        if stored.deleted or stored.content is None:
            raise Gone(Issue(f"Questionnaire/{questionnaire_id} was deleted", "Questionnaire"))
        found: JSON = orjson.loads(stored.content)
        return found
    if len(named) != 1:
        where = named[1].expression if named else "Parameters.parameter"
        raise BadRequest(
            Issue(
                "name the worksheet with exactly one of 'questionnaire', 'canonical', 'identifier' or "
                "'questionnaireRef' (or call /Questionnaire/<id>/$populate)",
                where,
                code="required" if not named else "invalid",
            )
        )
    parameter = named[0]
    if parameter.name == "questionnaire" and parameter.resource is not None:
        try:
            return check_resource("Questionnaire", parameter.resource)
        except FhirError as exc:
            raise BadRequest(
                *(Issue(i.diagnostics, f"{parameter.expression}.resource", code=i.code) for i in exc.issues)
            ) from exc
    if parameter.name == "identifier":
        return await _by_identifier(repository, parameter)
    if parameter.name == "questionnaireRef":
        reference = parameter.value("valueReference")
        text = reference.get("reference") if isinstance(reference, dict) else None
        key = f"{parameter.expression}.valueReference"
    else:
        text = parameter.value("valueCanonical", "valueUri", "valueUrl", "valueString")
        key = f"{parameter.expression}.{parameter.value_key() or 'valueCanonical'}"
    if not isinstance(text, str) or not text:
        raise BadRequest(
            Issue(f"'{parameter.name}' needs a value naming the Questionnaire", key, code="required")
        )
    form = await resolve_questionnaire(repository, text)
    if form is None:
        raise Unprocessable(Issue(f"The worksheet '{text}' is not on this server", key, code="not-found"))
    return form


async def _by_identifier(repository: ResourceRepository, parameter: Parameter) -> JSON:
    identifier = parameter.value("valueIdentifier")
    key = f"{parameter.expression}.valueIdentifier"
    value = identifier.get("value") if isinstance(identifier, dict) else None
    if not isinstance(value, str) or not value:
        raise BadRequest(Issue("'identifier' needs a valueIdentifier with a value", key, code="required"))
    system = identifier.get("system") if isinstance(identifier, dict) else None
    if "\x00" in value or (system is not None and "\x00" in str(system)):
        raise Unprocessable(
            Issue("No Questionnaire on this server has that identifier", key, code="not-found")
        )
    if system is not None and not isinstance(system, str):
        raise BadRequest(Issue("the identifier's system must be a URI", f"{key}.system", code="value"))
    found = await find_by_identifier(repository.connection, "Questionnaire", system=system, value=value)
    forms = [orjson.loads(stored.content) for stored in found if stored.content is not None]
    label = f"{system}|{value}" if system else value
    if not forms:
        raise Unprocessable(
            Issue(f"No Questionnaire on this server has the identifier {label}", key, code="not-found")
        )
    if len({form.get("url") for form in forms}) > 1:
        raise Unprocessable(
            Issue(
                f"Several worksheets have the identifier {label}; name one by its canonical instead",
                key,
                code="multiple-matches",
            )
        )
    latest: JSON = max(forms, key=lambda form: _version_key(form.get("version")))
    return latest


def _version_key(version: object) -> tuple[tuple[int, int | str], ...]:
    parts = str(version or "").replace("-", ".").split(".")
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in parts)
