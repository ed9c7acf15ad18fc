"""Core: the audit log — events, the chain that seals them (both append-only), per-municipality audit settings.

Revision ID: core_0003
Revises: core_0002
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from core.audit.schema import create_append_only_triggers, drop_append_only_triggers
from core.db.base import UTCDateTime
from core.db.migration import municipality_fk
from core.db.rls import disable_tenant_isolation, enable_tenant_isolation

revision = "core_0003"
down_revision = "core_0002"
branch_labels = None
depends_on = None

TENANT_TABLES = ("audit_events", "audit_chain", "audit_settings")


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("municipality_id", sa.Integer(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(120), nullable=False),
        sa.Column("action", sa.String(80), nullable=False),
        sa.Column("target_type", sa.String(40), nullable=False),
        sa.Column("target_id", sa.String(200), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("mac", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("municipality_id", "id", name="pk_audit_events"),
        municipality_fk("audit_events"),
    )
    op.create_index("ix_audit_events_recorded_at", "audit_events", ["municipality_id", "recorded_at", "id"])
    op.create_index("ix_audit_events_actor", "audit_events", ["municipality_id", "actor", "recorded_at"])
    op.create_index(
        "ix_audit_events_target",
        "audit_events",
        ["municipality_id", "target_type", "target_id", "recorded_at"],
    )
    op.create_table(
        "audit_chain",
        sa.Column("municipality_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("chain_mac", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("municipality_id", "seq", name="pk_audit_chain"),
        sa.UniqueConstraint("municipality_id", "event_id", name="uq_audit_chain_municipality_id_event_id"),
        municipality_fk("audit_chain"),
    )
    op.create_table(
        "audit_settings",
        sa.Column("municipality_id", sa.Integer(), nullable=False),
        sa.Column("retention_days", sa.Integer(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("municipality_id", name="pk_audit_settings"),
        municipality_fk("audit_settings"),
    )
    for table in TENANT_TABLES:
        enable_tenant_isolation(op, table)
    create_append_only_triggers(op)


def downgrade() -> None:
    drop_append_only_triggers(op)
    for table in reversed(TENANT_TABLES):
        disable_tenant_isolation(op, table)
    op.drop_table("audit_settings")
    op.drop_table("audit_chain")
    op.drop_index("ix_audit_events_target", table_name="audit_events")
    op.drop_index("ix_audit_events_actor", table_name="audit_events")
    op.drop_index("ix_audit_events_recorded_at", table_name="audit_events")
    op.drop_table("audit_events")
