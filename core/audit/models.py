"""The audit tables: events (written by :func:`core.audit.record`), the chain that seals them, and settings.

``audit_events`` and ``audit_chain`` are append-only: triggers in the database refuse UPDATE and DELETE (see
:mod:`core.audit.schema`); the one sanctioned deletion is the retention purge. Both are tenant-scoped, with
row-level security on PostgreSQL like every tenant table.

There is deliberately no foreign key from the chain to the events: the chain must be able to say "this event is
gone", and verification, not a constraint, is what proves the log whole.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Integer, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base, TenantScoped, UTCDateTime, municipality_column, utcnow


class AuditEvent(TenantScoped, Base):
    """One recorded change: who, what, to which object, when; a small payload of references; its MAC.

    ``mac`` is HMAC-SHA256 over a canonical encoding of every other column (:func:`core.audit.macs.event_mac`).
    """

    __tablename__ = "audit_events"

    municipality_id: Mapped[int] = municipality_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(120))
    """A reference: ``account:<uuid>``, ``api_key:<uuid>``, ``job:<name>``, ``plugin:<name>``, ``cli``, ``system``."""
    action: Mapped[str] = mapped_column(String(80))
    """``<plugin>.<verb>``, e.g. ``core.plugin_enabled``."""
    target_type: Mapped[str] = mapped_column(String(40))
    target_id: Mapped[str] = mapped_column(String(200))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    mac: Mapped[str] = mapped_column(String(64))

    __table_args__ = (
        Index("ix_audit_events_recorded_at", "municipality_id", "recorded_at", "id"),
        Index("ix_audit_events_actor", "municipality_id", "actor", "recorded_at"),
        Index("ix_audit_events_target", "municipality_id", "target_type", "target_id", "recorded_at"),
    )


class AuditChainEntry(TenantScoped, Base):
    """The seal of one event: its place ``seq`` (1, 2, 3, ... per municipality) and a MAC chaining it to the
    entry before (:func:`core.audit.macs.chain_mac`). Appended by the sealer only."""

    __tablename__ = "audit_chain"

    municipality_id: Mapped[int] = municipality_column(primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    chain_mac: Mapped[str] = mapped_column(String(64))

    __table_args__ = (UniqueConstraint("municipality_id", "event_id"),)


class AuditSettingsRow(TenantScoped, Base):
    """A municipality's audit settings. No row, or ``retention_days`` unset: keep everything."""

    __tablename__ = "audit_settings"

    municipality_id: Mapped[int] = municipality_column(primary_key=True)
    retention_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
