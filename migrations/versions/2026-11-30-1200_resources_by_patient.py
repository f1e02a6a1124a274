"""Index the current resources by patient compartment: a patient-context token's searches filter on it.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 12:00:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.create_index(
        "ix_resources_type_patient",
        "resources",
        ["resource_type", "patient_id"],
        postgresql_where="patient_id IS NOT NULL",
    )


def downgrade() -> None:
    op.drop_index("ix_resources_type_patient", table_name="resources")
