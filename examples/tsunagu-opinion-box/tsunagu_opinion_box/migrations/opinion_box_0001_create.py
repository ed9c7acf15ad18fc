"""opinion_box: the opinions table.

Revision ID: opinion_box_0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from core.db.base import UTCDateTime
from core.db.migration import tenant_columns
from core.db.rls import disable_tenant_isolation, enable_tenant_isolation

revision = "opinion_box_0001"
down_revision = None
branch_labels = ("opinion_box",)
depends_on = "core_0001"


def upgrade() -> None:
    op.create_table(
        "opinion_box_opinions",
        *tenant_columns("opinion_box_opinions"),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("receipt", sa.String(12), nullable=False),
        sa.Column("topic", sa.String(100), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reply_due", UTCDateTime(), nullable=False),
        sa.Column("answered_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("municipality_id", "id", name="pk_opinion_box_opinions"),
        sa.UniqueConstraint("municipality_id", "receipt", name="uq_opinion_box_opinions_receipt"),
    )
    enable_tenant_isolation(op, "opinion_box_opinions")


def downgrade() -> None:
    disable_tenant_isolation(op, "opinion_box_opinions")
    op.drop_table("opinion_box_opinions")
