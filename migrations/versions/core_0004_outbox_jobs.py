"""Core: the transactional outbox, the keys of jobs already done, and the claims of periodic jobs.

Revision ID: core_0004
Revises: core_0003
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from core.db.base import UTCDateTime
from core.db.migration import municipality_fk
from core.db.rls import disable_tenant_isolation, enable_tenant_isolation

revision = "core_0004"
down_revision = "core_0003"
branch_labels = None
depends_on = None

TENANT_TABLES = ("outbox_messages", "job_runs", "periodic_claims")
PENDING = sa.text("relayed_at IS NULL")


def upgrade() -> None:
    op.create_table(
        "outbox_messages",
        sa.Column("municipality_id", sa.Integer(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("job", sa.String(120), nullable=False),
        sa.Column("kwargs", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("not_before", UTCDateTime(), nullable=False),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
        sa.Column("relayed_at", UTCDateTime(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(500), nullable=True),
        sa.PrimaryKeyConstraint("municipality_id", "id", name="pk_outbox_messages"),
        sa.UniqueConstraint("municipality_id", "key", name="uq_outbox_messages_municipality_id_key"),
        municipality_fk("outbox_messages"),
    )
    op.create_index(
        "ix_outbox_messages_pending",
        "outbox_messages",
        ["not_before"],
        postgresql_where=PENDING,
        sqlite_where=PENDING,
    )
    op.create_table(
        "job_runs",
        sa.Column("municipality_id", sa.Integer(), nullable=False),
        sa.Column("job", sa.String(120), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("done_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("municipality_id", "job", "key", name="pk_job_runs"),
        municipality_fk("job_runs"),
    )
    op.create_table(
        "periodic_claims",
        sa.Column("municipality_id", sa.Integer(), nullable=False),
        sa.Column("job", sa.String(120), nullable=False),
        sa.Column("period_start", UTCDateTime(), nullable=False),
        sa.Column("claimed_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("municipality_id", "job", name="pk_periodic_claims"),
        municipality_fk("periodic_claims"),
    )
    for table in TENANT_TABLES:
        enable_tenant_isolation(op, table)


def downgrade() -> None:
    for table in reversed(TENANT_TABLES):
        disable_tenant_isolation(op, table)
    op.drop_table("periodic_claims")
    op.drop_table("job_runs")
    op.drop_index("ix_outbox_messages_pending", table_name="outbox_messages")
    op.drop_table("outbox_messages")
