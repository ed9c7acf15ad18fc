"""notices: the notices table.

Revision ID: notices_0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from core.db.base import UTCDateTime
from core.db.rls import disable_tenant_isolation, enable_tenant_isolation

revision = "notices_0001"
down_revision = None
branch_labels = ("notices",)
depends_on = "core_0001"


def upgrade() -> None:
    op.create_table(
        "notices",
        sa.Column("municipality_id", sa.Integer(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("category", sa.String(32), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("published_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=True),
        sa.Column("withdrawn_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("municipality_id", "id", name="pk_notices"),
        sa.ForeignKeyConstraint(
            ["municipality_id"],
            ["municipalities.id"],
            ondelete="RESTRICT",
            name="fk_notices_municipality_id_municipalities",
        ),
    )
    op.create_index("ix_notices_municipality_published", "notices", ["municipality_id", "published_at"])
    enable_tenant_isolation(op, "notices")


def downgrade() -> None:
    disable_tenant_isolation(op, "notices")
    op.drop_index("ix_notices_municipality_published", table_name="notices")
    op.drop_table("notices")
