"""Narrow lookups over the search indexes that the SDC operations need.

`$populate` (http://hl7.org/fhir/uv/sdc/OperationDefinition/Questionnaire-populate) finds a form by its
`identifier` and pre-fills from the patient's latest response to the same form; both are one indexed query
each, written here because this package is the only one that speaks SQL.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Text, and_, cast, exists, select
from sqlalchemy.ext.asyncio import AsyncConnection

from service.storage.indexing.rows import search_reference, search_token
from service.storage.repository import StoredVersion
from service.storage.tables import resources
from service.storage.visibility import current_compartment_filter

_COLUMNS = (
    resources.c.resource_type,
    resources.c.id,
    resources.c.version_id,
    resources.c.last_updated,
    resources.c.deleted,
    cast(resources.c.content, Text).label("content"),
)


def _stored(row: Any) -> StoredVersion:
    return StoredVersion(
        resource_type=row.resource_type,
        id=row.id,
        version_id=row.version_id,
        last_updated=row.last_updated,
        deleted=row.deleted,
        content=row.content.encode() if row.content is not None else None,
    )


async def find_by_identifier(
    connection: AsyncConnection, resource_type: str, *, system: str | None, value: str
) -> list[StoredVersion]:
    """Live resources of a type carrying the identifier `system|value` (any system when it is None)."""
    tokens = search_token.alias("identifier_rows")
    condition = and_(
        tokens.c.resource_type == resources.c.resource_type,
        tokens.c.resource_id == resources.c.id,
        tokens.c.param == "identifier",
        tokens.c.code == value,
    )
    if system is not None:
        condition = and_(condition, tokens.c.system == system)
    statement = (
        select(*_COLUMNS)
        .where(
            resources.c.resource_type == resource_type,
            resources.c.deleted.is_(False),
            *current_compartment_filter([resource_type]),
            exists().where(condition),
        )
        .order_by(resources.c.id)
    )
    return [_stored(row) for row in (await connection.execute(statement)).all()]


async def latest_response(
    connection: AsyncConnection, *, patient_id: str, questionnaire_url: str
) -> StoredVersion | None:
    """The most recently written QuestionnaireResponse of a patient to any version of a form.

    Responses marked `entered-in-error` are skipped: their answers were wrong, so nothing is carried over
    from them.
    """
    subjects = search_reference.alias("subject_rows")
    forms = search_reference.alias("form_rows")
    statuses = search_token.alias("status_rows")
    statement = (
        select(*_COLUMNS)
        .where(
            resources.c.resource_type == "QuestionnaireResponse",
            resources.c.deleted.is_(False),
            *current_compartment_filter(["QuestionnaireResponse"]),
            exists().where(
                subjects.c.resource_type == resources.c.resource_type,
                subjects.c.resource_id == resources.c.id,
                subjects.c.param == "subject",
                subjects.c.target_type == "Patient",
                subjects.c.target_id == patient_id,
            ),
            exists().where(
                forms.c.resource_type == resources.c.resource_type,
                forms.c.resource_id == resources.c.id,
                forms.c.param == "questionnaire",
                forms.c.url == questionnaire_url,
            ),
            ~exists().where(
                statuses.c.resource_type == resources.c.resource_type,
                statuses.c.resource_id == resources.c.id,
                statuses.c.param == "status",
                statuses.c.code == "entered-in-error",
            ),
        )
        .order_by(resources.c.last_updated.desc(), resources.c.id.desc())
        .limit(1)
    )
    row = (await connection.execute(statement)).first()
    return _stored(row) if row is not None else None
