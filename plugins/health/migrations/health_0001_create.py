"""health: people, events, registrations, scans, consents, measures, awards, redemptions; row-level security.

The once-only rules live in the database, so no retry or race gets around them: a (person, session, rule) is
awarded once (``uq_health_awards_once``), a scan nonce is accepted once (the primary key of ``health_scans``),
a redemption key is used once per person.

Revision ID: health_0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from core.db.base import UTCDateTime
from core.db.migration import tenant_columns, tenant_reference
from core.db.rls import disable_tenant_isolation, enable_tenant_isolation

revision = "health_0001"
down_revision = None
branch_labels = ("health",)
depends_on = "core_0001"

TABLES = (
    "health_people",
    "health_events",
    "health_registrations",
    "health_scans",
    "health_consents",
    "health_measures",
    "health_awards",
    "health_redemptions",
)


def upgrade() -> None:
    op.create_table(
        "health_people",
        *tenant_columns("health_people"),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=True),
        sa.Column("proxy_account_id", sa.Uuid(), nullable=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("name_kana", sa.String(100), nullable=False),
        sa.Column("phone", sa.String(20), nullable=False),
        sa.Column("birth_year", sa.Integer(), nullable=False),
        sa.Column("district", sa.String(40), nullable=False),
        sa.Column("resident", sa.Boolean(), nullable=False),
        sa.Column("short_code", sa.String(8), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("municipality_id", "id", name="pk_health_people"),
        sa.UniqueConstraint("municipality_id", "account_id", name="uq_health_people_account"),
        sa.UniqueConstraint("municipality_id", "short_code", name="uq_health_people_short_code"),
    )
    op.create_index("ix_health_people_proxy", "health_people", ["municipality_id", "proxy_account_id"])
    op.create_table(
        "health_events",
        *tenant_columns("health_events"),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("title_kana", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("programme", sa.String(40), nullable=False),
        sa.Column("venue", sa.String(200), nullable=False),
        sa.Column("address", sa.String(300), nullable=False),
        sa.Column("starts_at", UTCDateTime(), nullable=False),
        sa.Column("ends_at", UTCDateTime(), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("min_age", sa.Integer(), nullable=True),
        sa.Column("residents_only", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("municipality_id", "id", name="pk_health_events"),
    )
    op.create_index("ix_health_events_start", "health_events", ["municipality_id", "starts_at"])
    op.create_table(
        "health_registrations",
        *tenant_columns("health_registrations"),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("person_id", sa.Uuid(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("checked_in_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("municipality_id", "id", name="pk_health_registrations"),
        tenant_reference(["event_id"], "health_events", "fk_health_registrations_event"),
        tenant_reference(["person_id"], "health_people", "fk_health_registrations_person"),
    )
    op.create_index(
        "ix_health_registrations_event", "health_registrations", ["municipality_id", "event_id", "state"]
    )
    op.create_index(
        "ix_health_registrations_person", "health_registrations", ["municipality_id", "person_id"]
    )
    op.create_table(
        "health_scans",
        *tenant_columns("health_scans"),
        sa.Column("nonce", sa.String(64), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("person_id", sa.Uuid(), nullable=True),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("scanned_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("municipality_id", "nonce", name="pk_health_scans"),
    )
    op.create_table(
        "health_consents",
        *tenant_columns("health_consents"),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("person_id", sa.Uuid(), nullable=False),
        sa.Column("programme", sa.String(40), nullable=False),
        sa.Column("given_at", UTCDateTime(), nullable=False),
        sa.Column("withdrawn_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("municipality_id", "id", name="pk_health_consents"),
        tenant_reference(["person_id"], "health_people", "fk_health_consents_person"),
        sa.UniqueConstraint("municipality_id", "person_id", "programme", name="uq_health_consents_person"),
    )
    op.create_table(
        "health_measures",
        *tenant_columns("health_measures"),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("person_id", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("programme", sa.String(40), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("phase", sa.String(8), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("municipality_id", "id", name="pk_health_measures"),
        tenant_reference(["person_id"], "health_people", "fk_health_measures_person"),
        tenant_reference(["event_id"], "health_events", "fk_health_measures_event"),
    )
    op.create_index(
        "ix_health_measures_person", "health_measures", ["municipality_id", "person_id", "programme"]
    )
    op.create_table(
        "health_awards",
        *tenant_columns("health_awards"),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("person_id", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("rule", sa.String(32), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("earned_on", sa.Date(), nullable=False),
        sa.Column("fiscal_year", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("municipality_id", "id", name="pk_health_awards"),
        tenant_reference(["person_id"], "health_people", "fk_health_awards_person"),
        tenant_reference(["event_id"], "health_events", "fk_health_awards_event"),
        sa.UniqueConstraint("municipality_id", "person_id", "event_id", "rule", name="uq_health_awards_once"),
    )
    op.create_index(
        "ix_health_awards_person_year", "health_awards", ["municipality_id", "person_id", "fiscal_year"]
    )
    op.create_table(
        "health_redemptions",
        *tenant_columns("health_redemptions"),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("person_id", sa.Uuid(), nullable=False),
        sa.Column("idempotency_key", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("fiscal_year", sa.Integer(), nullable=False),
        sa.Column("voucher_code", sa.String(16), nullable=True),
        sa.Column("transfer_id", sa.String(64), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("municipality_id", "id", name="pk_health_redemptions"),
        tenant_reference(["person_id"], "health_people", "fk_health_redemptions_person"),
        sa.UniqueConstraint(
            "municipality_id", "person_id", "idempotency_key", name="uq_health_redemptions_key"
        ),
    )
    for table in TABLES:
        enable_tenant_isolation(op, table)


def downgrade() -> None:
    for table in reversed(TABLES):
        disable_tenant_isolation(op, table)
    for table in reversed(TABLES):
        op.drop_table(table)
