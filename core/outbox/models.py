"""The outbox table: job messages written in the transaction that caused them, relayed to the broker after commit."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Integer, String, UniqueConstraint, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base, TenantScoped, UTCDateTime, municipality_column

_PENDING = text("relayed_at IS NULL")


class OutboxMessage(TenantScoped, Base):
    """One job to run for one municipality. Pending while ``relayed_at`` is unset.

    Rows stay after relaying: ``key`` stays unique per municipality, so a message sent twice with one key is
    queued once however far apart the two sends are.
    """

    __tablename__ = "outbox_messages"

    municipality_id: Mapped[int] = municipality_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    key: Mapped[str] = mapped_column(String(200))
    """The idempotency key the sender gave, or the id as text. The job sees it as ``ctx.message_key``."""
    job: Mapped[str] = mapped_column(String(120))
    """The actor name, ``<plugin>.<function>`` or ``core.<function>``."""
    kwargs: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    not_before: Mapped[datetime] = mapped_column(UTCDateTime())
    """When the relay may send it: the sender's ``not_before``, moved later after a failed relay attempt."""
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    """When a relay last handed it to the broker."""
    relayed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    """When the broker became responsible for it. With the embedded (in-memory) broker, only once the job has
    finished in this process: a message whose process died before that is sent again when the app restarts."""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    """Relay attempts that failed for this message's own reason (an unknown job); broker outages do not count."""
    last_error: Mapped[str | None] = mapped_column(String(500), nullable=True)

    __table_args__ = (
        UniqueConstraint("municipality_id", "key"),
        # The relay looks across municipalities for what is due, so this one index does not lead with the
        # municipality; it holds pending rows only and stays small.
        Index("ix_outbox_messages_pending", "not_before", postgresql_where=_PENDING, sqlite_where=_PENDING),
    )
