"""Index token texts and reference URLs only where there is one.

Most token rows have no text and most reference rows point to this server (no URL); their entries in these
two indexes were written with every resource and read by no search. `:text` and URL searches compare with
strict operators, which imply `IS NOT NULL`, so the planner keeps using the partial indexes.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 15:00:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.drop_index("ix_search_token_text", table_name="search_token")
    op.create_index(
        "ix_search_token_text",
        "search_token",
        ["resource_type", "param", "text"],
        postgresql_ops={"text": "text_pattern_ops"},
        postgresql_where="text IS NOT NULL",
    )
    op.drop_index("ix_search_reference_url", table_name="search_reference")
    op.create_index(
        "ix_search_reference_url",
        "search_reference",
        ["url", "version"],
        postgresql_where="url IS NOT NULL",
    )


def downgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.drop_index("ix_search_reference_url", table_name="search_reference")
    op.create_index("ix_search_reference_url", "search_reference", ["url", "version"])
    op.drop_index("ix_search_token_text", table_name="search_token")
    op.create_index(
        "ix_search_token_text",
        "search_token",
        ["resource_type", "param", "text"],
        postgresql_ops={"text": "text_pattern_ops"},
    )
