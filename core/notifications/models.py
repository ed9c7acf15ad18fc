"""The notification tables. All are tenant-scoped: a municipality's messages, preferences and endpoints are its own.

- ``notifications``: one row per person per message, rendered in that person's language. It is what the in-app
  inbox shows (unless the sender left the inbox out) and the record of what was sent.
- ``notification_deliveries``: one row per message per channel that carries it further (email, a webhook
  endpoint, a plugin's channel), with its status; a delivery is attempted until it is sent, skipped or failed.
- ``notification_topic_sends``: a message to everyone subscribed to a topic, fanned out to ``notifications``
  by a job in batches.
- ``notification_preferences``, ``topic_subscriptions``: what each person chose, per municipality.
- ``notification_topics``: a municipality's own topics beyond the core list.
- ``webhook_endpoints``: systems the municipality's administrators registered, with an encrypted secret.
- ``notification_settings``: the municipality's sender address for email.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base, TenantScoped, UTCDateTime, municipality_column, utcnow


class Notification(TenantScoped, Base):
    """A message to one person, as they read it (subject and body rendered in their language)."""

    __tablename__ = "notifications"

    municipality_id: Mapped[int] = municipality_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    account_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("accounts.id", ondelete="CASCADE"))
    dedupe_key: Mapped[str] = mapped_column(String(200))
    """The sender's idempotency key (``topic_send:<id>`` for a topic send): one notification per key and person."""
    template: Mapped[str] = mapped_column(String(120))
    topic: Mapped[str | None] = mapped_column(String(40), nullable=True)
    topic_send_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    locale: Mapped[str] = mapped_column(String(8))
    subject: Mapped[str] = mapped_column(String(500))
    body: Mapped[str] = mapped_column(Text)
    in_inbox: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (
        UniqueConstraint("municipality_id", "dedupe_key", "account_id"),
        Index("ix_notifications_inbox", "municipality_id", "account_id", "created_at"),
    )


class TopicSend(TenantScoped, Base):
    """One message to everyone subscribed to a topic; ``cursor`` is the last account the fan-out reached."""

    __tablename__ = "notification_topic_sends"

    municipality_id: Mapped[int] = municipality_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    key: Mapped[str] = mapped_column(String(200))
    topic: Mapped[str] = mapped_column(String(40))
    template: Mapped[str] = mapped_column(String(120))
    context: Mapped[dict[str, Any]] = mapped_column(JSON)
    actor: Mapped[str] = mapped_column(String(120))
    status: Mapped[str] = mapped_column(String(16))
    """``queued`` until the fan-out has reached every subscriber, then ``done``; ``failed`` when the template no
    longer renders (changed after the send was queued)."""
    cursor: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    recipients: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (UniqueConstraint("municipality_id", "key"),)


class Delivery(TenantScoped, Base):
    """A message on its way through one channel: a notification by email or a plugin channel, or a notification
    or topic send to one webhook endpoint."""

    __tablename__ = "notification_deliveries"

    municipality_id: Mapped[int] = municipality_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    notification_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    topic_send_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    channel: Mapped[str] = mapped_column(String(40))
    endpoint_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    status: Mapped[str] = mapped_column(String(16))
    """``pending``, ``retrying``, then ``sent``, ``skipped`` (nowhere to send it) or ``failed`` (gave up)."""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    """While set and in the future, one job is attempting it; another waits rather than send it twice."""
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(300), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    __table_args__ = (
        ForeignKeyConstraint(
            ["municipality_id", "notification_id"],
            ["notifications.municipality_id", "notifications.id"],
            ondelete="CASCADE",
            name="fk_notification_deliveries_notification",
        ),
        ForeignKeyConstraint(
            ["municipality_id", "topic_send_id"],
            ["notification_topic_sends.municipality_id", "notification_topic_sends.id"],
            ondelete="CASCADE",
            name="fk_notification_deliveries_topic_send",
        ),
        Index("ix_notification_deliveries_notification", "municipality_id", "notification_id"),
        Index("ix_notification_deliveries_status", "municipality_id", "status", "created_at"),
    )


class Preference(TenantScoped, Base):
    """Whether a person wants a channel in this municipality. No row: the channel's default."""

    __tablename__ = "notification_preferences"

    municipality_id: Mapped[int] = municipality_column(primary_key=True)
    account_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    channel: Mapped[str] = mapped_column(String(40), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class Subscription(TenantScoped, Base):
    """A person receives what the municipality sends on a topic."""

    __tablename__ = "topic_subscriptions"

    municipality_id: Mapped[int] = municipality_column(primary_key=True)
    topic: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (Index("ix_topic_subscriptions_account", "municipality_id", "account_id"),)


class TopicRow(TenantScoped, Base):
    """A topic this municipality offers beyond the core ones."""

    __tablename__ = "notification_topics"

    municipality_id: Mapped[int] = municipality_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    title: Mapped[str] = mapped_column(String(100))
    title_en: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class WebhookEndpoint(TenantScoped, Base):
    """A system that receives the municipality's notifications as signed JSON POSTs.

    The secret is kept encrypted with a key derived from the platform secret (it must be readable to sign).
    """

    __tablename__ = "webhook_endpoints"

    municipality_id: Mapped[int] = municipality_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    url: Mapped[str] = mapped_column(String(2000))
    secret: Mapped[bytes] = mapped_column(LargeBinary)
    templates: Mapped[list[str]] = mapped_column(JSON, default=list)
    """Template names (or ``<plugin>.*``) whose notifications it receives."""
    topics: Mapped[list[str]] = mapped_column(JSON, default=list)
    """Topics whose sends it receives (one POST per send, not per subscriber)."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class NotificationSettingsRow(TenantScoped, Base):
    """A municipality's notification settings. No row: the deployment's defaults."""

    __tablename__ = "notification_settings"

    municipality_id: Mapped[int] = municipality_column(primary_key=True)
    email_from: Mapped[str | None] = mapped_column(String(254), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
