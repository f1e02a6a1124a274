"""SQL conditions that keep a patient-context request inside its patient's compartment.

The rule itself is `service.fhir.compartment`; this states it over the `patient_id` column that every
stored row carries, for statements that read many rows at once (search, conditional matching, reference
checks).
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import ColumnElement, or_

from service.fhir.access import compartment_restriction
from service.fhir.compartment import confined_type
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


def current_compartment_filter(types: Iterable[str] | None) -> list[ColumnElement[bool]]:
    """`compartment_filter` for the patient the current request is confined to, if any."""
    return compartment_filter(compartment_restriction(), types)
