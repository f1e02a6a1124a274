"""The queries of the IPT treatment-plan API that the repository does not already offer.

A client's plans are found through the reference index (`search_reference`, written with every version),
which is what `CarePlan?subject=Patient/<id>` reads too (https://hl7.org/fhir/R4/search.html#reference).
"""

from __future__ import annotations

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from service.storage.indexing.rows import search_reference
from service.storage.tables import resources
from service.storage.visibility import current_compartment_filter


async def careplan_ids_of_patient(connection: AsyncConnection, patient_id: str, *, limit: int) -> list[str]:
    """Ids of the live CarePlans whose `subject` is `Patient/<patient_id>`, most recently written first."""
    statement = (
        select(resources.c.id, resources.c.last_updated)
        .join(
            search_reference,
            and_(
                search_reference.c.resource_type == resources.c.resource_type,
                search_reference.c.resource_id == resources.c.id,
            ),
        )
        .where(
            search_reference.c.resource_type == "CarePlan",
            search_reference.c.param == "subject",
            search_reference.c.target_type == "Patient",
            search_reference.c.target_id == patient_id,
            resources.c.deleted.is_(False),
            *current_compartment_filter(["CarePlan"]),
        )
        .distinct()
        .order_by(resources.c.last_updated.desc(), resources.c.id)
        .limit(limit)
    )
    return [str(row.id) for row in await connection.execute(statement)]
