"""Search index tables: one per search parameter type, rows of the current versions only.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 05:36:36.885883+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.create_table(
        "search_date",
        sa.Column("resource_type", sa.Text(), nullable=False),
        sa.Column("resource_id", sa.Text(), nullable=False),
        sa.Column("param", sa.Text(), nullable=False),
        sa.Column("patient_id", sa.Text(), nullable=True),
        sa.Column("low", sa.DateTime(timezone=True), nullable=False),
        sa.Column("high", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_search_date_range", "search_date", ["resource_type", "param", "low", "high"], unique=False
    )
    op.create_index("ix_search_date_resource", "search_date", ["resource_type", "resource_id"], unique=False)
    op.create_table(
        "search_number",
        sa.Column("resource_type", sa.Text(), nullable=False),
        sa.Column("resource_id", sa.Text(), nullable=False),
        sa.Column("param", sa.Text(), nullable=False),
        sa.Column("patient_id", sa.Text(), nullable=True),
        sa.Column("value", sa.Numeric(), nullable=False),
        sa.Column("system", sa.Text(), nullable=True),
        sa.Column("code", sa.Text(), nullable=True),
    )
    op.create_index(
        "ix_search_number_resource", "search_number", ["resource_type", "resource_id"], unique=False
    )
    op.create_index(
        "ix_search_number_value", "search_number", ["resource_type", "param", "value"], unique=False
    )
    op.create_table(
        "search_reference",
        sa.Column("resource_type", sa.Text(), nullable=False),
        sa.Column("resource_id", sa.Text(), nullable=False),
        sa.Column("param", sa.Text(), nullable=False),
        sa.Column("patient_id", sa.Text(), nullable=True),
        sa.Column("target_type", sa.Text(), nullable=True),
        sa.Column("target_id", sa.Text(), nullable=True),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("version", sa.Text(), nullable=True),
    )
    op.create_index(
        "ix_search_reference_resource", "search_reference", ["resource_type", "resource_id"], unique=False
    )
    op.create_index(
        "ix_search_reference_target",
        "search_reference",
        ["target_type", "target_id", "param", "resource_type"],
        unique=False,
    )
    op.create_index("ix_search_reference_url", "search_reference", ["url", "version"], unique=False)
    op.create_table(
        "search_string",
        sa.Column("resource_type", sa.Text(), nullable=False),
        sa.Column("resource_id", sa.Text(), nullable=False),
        sa.Column("param", sa.Text(), nullable=False),
        sa.Column("patient_id", sa.Text(), nullable=True),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("exact", sa.Text(), nullable=False),
    )
    op.create_index(
        "ix_search_string_resource", "search_string", ["resource_type", "resource_id"], unique=False
    )
    op.create_index(
        "ix_search_string_value",
        "search_string",
        ["resource_type", "param", "value"],
        unique=False,
        postgresql_ops={"value": "text_pattern_ops"},
    )
    op.create_table(
        "search_token",
        sa.Column("resource_type", sa.Text(), nullable=False),
        sa.Column("resource_id", sa.Text(), nullable=False),
        sa.Column("param", sa.Text(), nullable=False),
        sa.Column("patient_id", sa.Text(), nullable=True),
        sa.Column("system", sa.Text(), nullable=True),
        sa.Column("code", sa.Text(), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
    )
    op.create_index(
        "ix_search_token_resource", "search_token", ["resource_type", "resource_id"], unique=False
    )
    op.create_index(
        "ix_search_token_text",
        "search_token",
        ["resource_type", "param", "text"],
        unique=False,
        postgresql_ops={"text": "text_pattern_ops"},
    )
    op.create_index(
        "ix_search_token_value", "search_token", ["resource_type", "param", "code", "system"], unique=False
    )
    op.create_table(
        "search_uri",
        sa.Column("resource_type", sa.Text(), nullable=False),
        sa.Column("resource_id", sa.Text(), nullable=False),
        sa.Column("param", sa.Text(), nullable=False),
        sa.Column("patient_id", sa.Text(), nullable=True),
        sa.Column("uri", sa.Text(), nullable=False),
    )
    op.create_index("ix_search_uri_resource", "search_uri", ["resource_type", "resource_id"], unique=False)
    op.create_index(
        "ix_search_uri_value",
        "search_uri",
        ["resource_type", "param", "uri"],
        unique=False,
        postgresql_ops={"uri": "text_pattern_ops"},
    )


def downgrade() -> None:
    op.drop_index("ix_search_uri_value", table_name="search_uri", postgresql_ops={"uri": "text_pattern_ops"})
    op.drop_index("ix_search_uri_resource", table_name="search_uri")
    op.drop_table("search_uri")
    op.drop_index("ix_search_token_value", table_name="search_token")
    op.drop_index(
        "ix_search_token_text", table_name="search_token", postgresql_ops={"text": "text_pattern_ops"}
    )
    op.drop_index("ix_search_token_resource", table_name="search_token")
    op.drop_table("search_token")
    op.drop_index(
        "ix_search_string_value", table_name="search_string", postgresql_ops={"value": "text_pattern_ops"}
    )
    op.drop_index("ix_search_string_resource", table_name="search_string")
    op.drop_table("search_string")
    op.drop_index("ix_search_reference_url", table_name="search_reference")
    op.drop_index("ix_search_reference_target", table_name="search_reference")
    op.drop_index("ix_search_reference_resource", table_name="search_reference")
    op.drop_table("search_reference")
    op.drop_index("ix_search_number_value", table_name="search_number")
    op.drop_index("ix_search_number_resource", table_name="search_number")
    op.drop_table("search_number")
    op.drop_index("ix_search_date_resource", table_name="search_date")
    op.drop_index("ix_search_date_range", table_name="search_date")
    op.drop_table("search_date")
