"""The access decision (`service.fhir.access`) as SQL, over the `resource_type` and `patient_id` columns
that every stored row and every index row carries.

Statements that read many rows at once (search matches, includes, the rows a chain or `_has` looks at,
history, conditional matching, reference checks) add these conditions, so that what a token may not see is
neither returned nor counted nor able to change an answer.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import ColumnElement, and_, false, or_

from service.fhir.access import Access, compartment_restriction, confined_type, current_access
from service.fhir.scopes import Permission
from service.fhir.search_parameters import served_types
from service.storage.tables import resources


def compartment_filter(
    patient: str | None,
    types: Iterable[str] | None,
    *,
    type_column: ColumnElement[str] = resources.c.resource_type,
    patient_column: ColumnElement[str] = resources.c.patient_id,
) -> list[ColumnElement[bool]]:
    """Conditions admitting, of rows whose type is among `types` (None: any type), only those `patient`
    may see: every row of a type outside the patient compartment, and the patient's own rows of the others.
    No condition when `patient` is None (an unconfined request)."""
    if patient is None:
        return []
    candidates = served_types() if types is None else frozenset(types)
    confined = sorted(t for t in candidates if confined_type(t))
    if not confined:
        return []
    own = patient_column == patient
    if types is not None and len(confined) == len(candidates):
        return [own]
    return [or_(type_column.not_in(confined), own)]


def current_compartment_filter(
    types: Iterable[str] | None,
    *,
    type_column: ColumnElement[str] = resources.c.resource_type,
    patient_column: ColumnElement[str] = resources.c.patient_id,
) -> list[ColumnElement[bool]]:
    """`compartment_filter` for the patient the current request is confined to, if any."""
    return compartment_filter(
        compartment_restriction(), types, type_column=type_column, patient_column=patient_column
    )


def reach_filter(
    access: Access | None,
    types: Iterable[str] | None,
    permission: Permission,
    *,
    type_column: ColumnElement[str] = resources.c.resource_type,
    patient_column: ColumnElement[str] = resources.c.patient_id,
) -> list[ColumnElement[bool]]:
    """Conditions admitting, of rows whose type is among `types` (None: every served type), only those
    `access` reaches for `permission`: whole types, or one patient's rows of a type. No condition when
    everything is reached (or there is no access: outside a request)."""
    if access is None:
        return []
    candidates = sorted(served_types() if types is None else set(types))
    everywhere: list[str] = []
    by_patient: dict[str, list[str]] = {}
    for resource_type in candidates:
        reach = access.reach(resource_type, permission)
        if not reach.allowed:
            continue
        if reach.patient is None:
            everywhere.append(resource_type)
        else:
            by_patient.setdefault(reach.patient, []).append(resource_type)
    if len(everywhere) == len(candidates):
        # With `types` None, rows of types no longer served cannot exist: every served one is reached.
        return []
    single = len(candidates) == 1
    alternatives: list[ColumnElement[bool]] = []
    if everywhere:
        alternatives.append(type_column.in_(everywhere))
    for patient, confined in by_patient.items():
        own = patient_column == patient
        alternatives.append(own if single else and_(type_column.in_(confined), own))
    if not alternatives:
        return [false()]
    return [or_(*alternatives)]


def current_reach_filter(
    types: Iterable[str] | None,
    permission: Permission,
    *,
    type_column: ColumnElement[str] = resources.c.resource_type,
    patient_column: ColumnElement[str] = resources.c.patient_id,
) -> list[ColumnElement[bool]]:
    """`reach_filter` for the current request."""
    return reach_filter(
        current_access(), types, permission, type_column=type_column, patient_column=patient_column
    )
