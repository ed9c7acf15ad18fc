"""Tables of the health plugin. Every row belongs to one municipality; ``municipality_id`` leads every key.

- :class:`Person` — someone taking part: with an account, cared for by a family member's account (a proxy), or
  only on paper (name, kana, phone). Name, kana and phone are personal data and never reach the audit log.
- :class:`Event` — a session (e-sports, health walk, check-up) with venue, capacity and eligibility.
- :class:`Registration` — a person's place or waitlist entry for a session, and the check-in.
- :class:`Scan` — one check-in scan by its client nonce: a replayed scan gets the stored answer.
- :class:`Consent`, :class:`Measure` — before/after measures (要配慮個人情報), only under a live consent.
- :class:`Award` — points paid, once per (person, session, rule); :class:`Redemption` — points spent.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    Date,
    Float,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, TenantScoped, UTCDateTime, municipality_column, utcnow


def _fk(columns: list[str], table: str, name: str, ondelete: str = "RESTRICT") -> ForeignKeyConstraint:
    return ForeignKeyConstraint(
        ["municipality_id", *columns],
        [f"{table}.municipality_id", f"{table}.id"],
        name=name,
        ondelete=ondelete,
    )


class Person(TenantScoped, Base):
    __tablename__ = "health_people"

    municipality_id: Mapped[int] = municipality_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    account_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    """The person's own account; ``None`` for someone registered on paper or by family."""
    proxy_account_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    """A family member's account acting for this person (registers, cancels, prints the card)."""
    name: Mapped[str] = mapped_column(String(100))
    name_kana: Mapped[str] = mapped_column(String(100), default="")
    phone: Mapped[str] = mapped_column(String(20), default="")
    birth_year: Mapped[int] = mapped_column(Integer)
    district: Mapped[str] = mapped_column(String(40), default="")
    resident: Mapped[bool] = mapped_column(Boolean, default=False)
    """Registered in this municipality (from the account's residence, or checked by staff on paper)."""
    short_code: Mapped[str] = mapped_column(String(8))
    """Typed at the venue instead of scanning the QR code."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        UniqueConstraint("municipality_id", "account_id", name="uq_health_people_account"),
        UniqueConstraint("municipality_id", "short_code", name="uq_health_people_short_code"),
        Index("ix_health_people_proxy", "municipality_id", "proxy_account_id"),
    )


class Event(TenantScoped, Base):
    __tablename__ = "health_events"

    municipality_id: Mapped[int] = municipality_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    title: Mapped[str] = mapped_column(String(200))
    title_kana: Mapped[str] = mapped_column(String(200), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    kind: Mapped[str] = mapped_column(String(16), default="event")
    """``event`` (pays ``attendance`` rules) or ``checkup`` (pays ``checkup`` rules)."""
    programme: Mapped[str] = mapped_column(String(40), default="")
    """The programme measures and consents belong to (``esports``, ``walking``); empty: none."""
    venue: Mapped[str] = mapped_column(String(200))
    address: Mapped[str] = mapped_column(String(300), default="")
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    capacity: Mapped[int] = mapped_column(Integer)
    min_age: Mapped[int | None] = mapped_column(Integer, nullable=True)
    residents_only: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (Index("ix_health_events_start", "municipality_id", "starts_at"),)


class Registration(TenantScoped, Base):
    __tablename__ = "health_registrations"

    municipality_id: Mapped[int] = municipality_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    person_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    state: Mapped[str] = mapped_column(String(16))
    """``registered``, ``waitlisted`` or ``cancelled``."""
    channel: Mapped[str] = mapped_column(String(8))
    """Who registered: ``self``, ``proxy`` (family) or ``staff`` (a paper form)."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    """Waitlist order."""
    checked_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (
        _fk(["event_id"], "health_events", "fk_health_registrations_event"),
        _fk(["person_id"], "health_people", "fk_health_registrations_person"),
        Index("ix_health_registrations_event", "municipality_id", "event_id", "state"),
        Index("ix_health_registrations_person", "municipality_id", "person_id"),
    )


class Scan(TenantScoped, Base):
    __tablename__ = "health_scans"

    municipality_id: Mapped[int] = municipality_column(primary_key=True)
    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    outcome: Mapped[str] = mapped_column(String(16))
    person_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    points: Mapped[int] = mapped_column(Integer, default=0)
    scanned_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Consent(TenantScoped, Base):
    __tablename__ = "health_consents"

    municipality_id: Mapped[int] = municipality_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    person_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    programme: Mapped[str] = mapped_column(String(40))
    given_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (
        _fk(["person_id"], "health_people", "fk_health_consents_person"),
        UniqueConstraint("municipality_id", "person_id", "programme", name="uq_health_consents_person"),
    )


class Measure(TenantScoped, Base):
    __tablename__ = "health_measures"

    municipality_id: Mapped[int] = municipality_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    person_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    programme: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(32))
    phase: Mapped[str] = mapped_column(String(8))
    """``before`` or ``after`` the programme."""
    value: Mapped[float] = mapped_column(Float)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        _fk(["person_id"], "health_people", "fk_health_measures_person"),
        _fk(["event_id"], "health_events", "fk_health_measures_event"),
        Index("ix_health_measures_person", "municipality_id", "person_id", "programme"),
    )


class Award(TenantScoped, Base):
    __tablename__ = "health_awards"

    municipality_id: Mapped[int] = municipality_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    person_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    rule: Mapped[str] = mapped_column(String(32))
    points: Mapped[int] = mapped_column(Integer)
    earned_on: Mapped[date] = mapped_column(Date)
    """The local date of the session: what the daily cap counts."""
    fiscal_year: Mapped[int] = mapped_column(Integer)
    """年度 (April to March); the points expire on 31 March after it."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        _fk(["person_id"], "health_people", "fk_health_awards_person"),
        _fk(["event_id"], "health_events", "fk_health_awards_event"),
        UniqueConstraint("municipality_id", "person_id", "event_id", "rule", name="uq_health_awards_once"),
        Index("ix_health_awards_person_year", "municipality_id", "person_id", "fiscal_year"),
    )


class Redemption(TenantScoped, Base):
    __tablename__ = "health_redemptions"

    municipality_id: Mapped[int] = municipality_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    person_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    idempotency_key: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16))
    """``currency`` (paid into the regional currency) or ``voucher`` (商品券, handed out by staff)."""
    points: Mapped[int] = mapped_column(Integer)
    fiscal_year: Mapped[int] = mapped_column(Integer)
    voucher_code: Mapped[str | None] = mapped_column(String(16), nullable=True)
    transfer_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    """The currency's transfer, for ``currency`` redemptions."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        _fk(["person_id"], "health_people", "fk_health_redemptions_person"),
        UniqueConstraint("municipality_id", "person_id", "idempotency_key", name="uq_health_redemptions_key"),
    )
