"""`_id` and `_lastUpdated` are searched on the resource rows, which hold both: their index rows go.

Every resource had one `_id` row in `search_token` and one `_lastUpdated` row in `search_date`, written with
it and saying nothing its row in `resources` does not. The downgrade writes them back from there.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 16:00:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.execute("DELETE FROM search_token WHERE param = '_id'")
    op.execute("DELETE FROM search_date WHERE param = '_lastUpdated'")


def downgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.execute(
        "INSERT INTO search_token (resource_type, resource_id, param, patient_id, system, code, text) "
        "SELECT resource_type, id, '_id', patient_id, NULL, id, NULL FROM resources WHERE NOT deleted"
    )
    op.execute(
        "INSERT INTO search_date (resource_type, resource_id, param, patient_id, low, high) "
        "SELECT resource_type, id, '_lastUpdated', patient_id, date_trunc('milliseconds', last_updated), "
        "date_trunc('milliseconds', last_updated) + interval '1 millisecond' FROM resources WHERE NOT deleted"
    )
