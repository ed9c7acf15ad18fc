"""Core: notifications — inbox items, deliveries, topic sends, preferences, subscriptions, topics, webhook
endpoints, per-municipality notification settings.

Revision ID: core_0005
Revises: core_0004
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from core.db.base import UTCDateTime
from core.db.migration import tenant_columns
from core.db.rls import disable_tenant_isolation, enable_tenant_isolation

revision = "core_0005"
down_revision = "core_0004"
branch_labels = None
depends_on = None

TENANT_TABLES = (
    "notifications",
    "notification_topic_sends",
    "notification_deliveries",
    "notification_preferences",
    "topic_subscriptions",
    "notification_topics",
    "webhook_endpoints",
    "notification_settings",
)


def _account(table: str) -> list[sa.SchemaItem]:
    return [
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], ondelete="CASCADE", name=f"fk_{table}_account_id_accounts"
        ),
    ]


def upgrade() -> None:
    op.create_table(
        "notifications",
        *tenant_columns("notifications"),
        sa.Column("id", sa.Uuid(), nullable=False),
        *_account("notifications"),
        sa.Column("dedupe_key", sa.String(200), nullable=False),
        sa.Column("template", sa.String(120), nullable=False),
        sa.Column("topic", sa.String(40), nullable=True),
        sa.Column("topic_send_id", sa.Uuid(), nullable=True),
        sa.Column("locale", sa.String(8), nullable=False),
        sa.Column("subject", sa.String(500), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("in_inbox", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("read_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("municipality_id", "id", name="pk_notifications"),
        sa.UniqueConstraint(
            "municipality_id",
            "dedupe_key",
            "account_id",
            name="uq_notifications_municipality_id_dedupe_key_account_id",
        ),
    )
    op.create_index(
        "ix_notifications_inbox", "notifications", ["municipality_id", "account_id", "created_at"]
    )
    op.create_table(
        "notification_topic_sends",
        *tenant_columns("notification_topic_sends"),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("topic", sa.String(40), nullable=False),
        sa.Column("template", sa.String(120), nullable=False),
        sa.Column("context", sa.JSON(), nullable=False),
        sa.Column("actor", sa.String(120), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("cursor", sa.Uuid(), nullable=True),
        sa.Column("recipients", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("municipality_id", "id", name="pk_notification_topic_sends"),
        sa.UniqueConstraint("municipality_id", "key", name="uq_notification_topic_sends_municipality_id_key"),
    )
    op.create_table(
        "notification_deliveries",
        *tenant_columns("notification_deliveries"),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("notification_id", sa.Uuid(), nullable=True),
        sa.Column("topic_send_id", sa.Uuid(), nullable=True),
        sa.Column("channel", sa.String(40), nullable=False),
        sa.Column("endpoint_id", sa.Uuid(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claimed_until", UTCDateTime(), nullable=True),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=True),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.String(300), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("municipality_id", "id", name="pk_notification_deliveries"),
        sa.ForeignKeyConstraint(
            ["municipality_id", "notification_id"],
            ["notifications.municipality_id", "notifications.id"],
            ondelete="CASCADE",
            name="fk_notification_deliveries_notification",
        ),
        sa.ForeignKeyConstraint(
            ["municipality_id", "topic_send_id"],
            ["notification_topic_sends.municipality_id", "notification_topic_sends.id"],
            ondelete="CASCADE",
            name="fk_notification_deliveries_topic_send",
        ),
    )
    op.create_index(
        "ix_notification_deliveries_notification",
        "notification_deliveries",
        ["municipality_id", "notification_id"],
    )
    op.create_index(
        "ix_notification_deliveries_status",
        "notification_deliveries",
        ["municipality_id", "status", "created_at"],
    )
    op.create_table(
        "notification_preferences",
        *tenant_columns("notification_preferences"),
        *_account("notification_preferences"),
        sa.Column("channel", sa.String(40), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint(
            "municipality_id", "account_id", "channel", name="pk_notification_preferences"
        ),
    )
    op.create_table(
        "topic_subscriptions",
        *tenant_columns("topic_subscriptions"),
        sa.Column("topic", sa.String(40), nullable=False),
        *_account("topic_subscriptions"),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("municipality_id", "topic", "account_id", name="pk_topic_subscriptions"),
    )
    op.create_index(
        "ix_topic_subscriptions_account", "topic_subscriptions", ["municipality_id", "account_id"]
    )
    op.create_table(
        "notification_topics",
        *tenant_columns("notification_topics"),
        sa.Column("name", sa.String(40), nullable=False),
        sa.Column("title", sa.String(100), nullable=False),
        sa.Column("title_en", sa.String(100), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("municipality_id", "name", name="pk_notification_topics"),
    )
    op.create_table(
        "webhook_endpoints",
        *tenant_columns("webhook_endpoints"),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("secret", sa.LargeBinary(), nullable=False),
        sa.Column("templates", sa.JSON(), nullable=False),
        sa.Column("topics", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("removed_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("municipality_id", "id", name="pk_webhook_endpoints"),
    )
    op.create_table(
        "notification_settings",
        *tenant_columns("notification_settings"),
        sa.Column("email_from", sa.String(254), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("municipality_id", name="pk_notification_settings"),
    )
    for table in TENANT_TABLES:
        enable_tenant_isolation(op, table)


def downgrade() -> None:
    for table in reversed(TENANT_TABLES):
        disable_tenant_isolation(op, table)
    op.drop_table("notification_settings")
    op.drop_table("webhook_endpoints")
    op.drop_table("notification_topics")
    op.drop_index("ix_topic_subscriptions_account", table_name="topic_subscriptions")
    op.drop_table("topic_subscriptions")
    op.drop_table("notification_preferences")
    op.drop_index("ix_notification_deliveries_status", table_name="notification_deliveries")
    op.drop_index("ix_notification_deliveries_notification", table_name="notification_deliveries")
    op.drop_table("notification_deliveries")
    op.drop_table("notification_topic_sends")
    op.drop_index("ix_notifications_inbox", table_name="notifications")
    op.drop_table("notifications")
