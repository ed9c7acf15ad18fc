"""Tables of the booking plugin. Every row belongs to one municipality; ``municipality_id`` leads every key.

- :class:`Facility` — a building or ground (体育館, 庭球場, コミュニティセンター) with its opening hours and closed days.
- :class:`Unit` — what is booked: a court, a room, half a gym. Units form a tree inside a facility: booking a
  unit occupies it and every unit below it, so booking the whole gym blocks both halves and the reverse.
- :class:`Reservation` — one booking (or a staff block, 行政使用), its state kept by the core workflow.
- :class:`Occupancy` — one row per unit a live reservation occupies, over its time range with the setup and
  cleanup buffers. The database refuses two overlapping rows for one unit (an exclusion constraint on
  PostgreSQL, a trigger on SQLite; see the migration), and releases them when the reservation ends.
- :class:`WaitlistEntry`, :class:`LotteryApplication`, :class:`LotteryWish`, :class:`LotteryDraw`.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db import Base, TenantScoped, TimestampMixin, UTCDateTime, municipality_column, utcnow
from core.workflow import StatefulMixin

ACTIVE_STATES = ("held", "review", "won", "confirmed")
"""States in which a reservation occupies its units (kept in step with the release trigger of the migration)."""


def _fk(columns: list[str], table: str, name: str, ondelete: str = "RESTRICT") -> ForeignKeyConstraint:
    return ForeignKeyConstraint(
        ["municipality_id", *columns],
        [f"{table}.municipality_id", f"{table}.id"],
        name=name,
        ondelete=ondelete,
    )


class Facility(TenantScoped, TimestampMixin, Base):
    __tablename__ = "booking_facilities"

    municipality_id: Mapped[int] = municipality_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    source_key: Mapped[str | None] = mapped_column(String(120), nullable=True)
    """Where an imported facility came from (``0039/2``, or the open data ID): importing again updates it."""
    name: Mapped[str] = mapped_column(String(200))
    name_kana: Mapped[str | None] = mapped_column(String(200), nullable=True)
    kind: Mapped[str] = mapped_column(String(32), default="other")
    address: Mapped[str] = mapped_column(String(300), default="")
    phone: Mapped[str] = mapped_column(String(40), default="")
    url: Mapped[str] = mapped_column(String(500), default="")
    latitude: Mapped[float | None] = mapped_column(Float, nullable=True)
    longitude: Mapped[float | None] = mapped_column(Float, nullable=True)
    hours: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """Weekday (``"0"`` Monday … ``"6"`` Sunday) -> ``["09:00", "21:00"]``; a weekday not listed is closed."""
    hours_exceptions: Mapped[list[Any]] = mapped_column(JSON, default=list)
    """Rules that change the hours: ``{"months": [6, 7, 8], "closes": "19:00"}``,
    ``{"weekdays": [5, 6], "holidays": true, "closes": "17:00"}`` (see ``services/_calendar.py``)."""
    hours_note: Mapped[str] = mapped_column(Text, default="")
    """What the published hours say that the rules above cannot express, kept for people to read."""
    closed_on_holidays: Mapped[bool] = mapped_column(Boolean, default=False)
    """Closed on Japanese public holidays (祝日)."""
    closed_year_end: Mapped[bool] = mapped_column(Boolean, default=True)
    """Closed over 年末年始, 29 December to 3 January."""
    closed_dates: Mapped[list[str]] = mapped_column(JSON, default=list)
    """The facility's own 休館日, ISO dates."""
    cancel_deadline_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    """Residents may cancel until this many days before the start; ``None``: the municipality's setting."""
    lottery_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    """Next month's slots are drawn by lottery before first-come booking opens."""
    lottery_opens_day: Mapped[int] = mapped_column(Integer, default=1)
    """Applications for month M open on this day of month M-1 …"""
    lottery_closes_day: Mapped[int] = mapped_column(Integer, default=10)
    """… and close at the end of this day."""
    description: Mapped[str] = mapped_column(Text, default="")

    __table_args__ = (
        UniqueConstraint("municipality_id", "source_key", name="uq_booking_facilities_source_key"),
    )


class Unit(TenantScoped, TimestampMixin, Base):
    __tablename__ = "booking_units"

    municipality_id: Mapped[int] = municipality_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    facility_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    parent_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    name: Mapped[str] = mapped_column(String(100))
    capacity: Mapped[int] = mapped_column(Integer, default=1)
    slot_minutes: Mapped[int | None] = mapped_column(Integer, nullable=True)
    """N-minute slots from opening time; ``None`` when the unit uses fixed slots."""
    fixed_slots: Mapped[list[Any]] = mapped_column(JSON, default=list)
    """時間区分: ``[{"name": "午前", "start": "09:00", "end": "12:00"}, …]``; empty when N-minute slots."""
    setup_minutes: Mapped[int] = mapped_column(Integer, default=0)
    cleanup_minutes: Mapped[int] = mapped_column(Integer, default=0)
    fee_resident: Mapped[int] = mapped_column(Integer, default=0)
    """Yen per slot for residents of the town."""
    fee_region: Mapped[int] = mapped_column(Integer, default=0)
    """Yen per slot for residents of the other member municipalities."""
    fee_other: Mapped[int] = mapped_column(Integer, default=0)
    """Yen per slot for everyone else."""
    requires_approval: Mapped[bool] = mapped_column(Boolean, default=False)
    """Bookings go to staff review (審査) before they are confirmed."""
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    __table_args__ = (
        _fk(["facility_id"], "booking_facilities", "fk_booking_units_facility"),
        _fk(["parent_id"], "booking_units", "fk_booking_units_parent"),
        Index("ix_booking_units_facility", "municipality_id", "facility_id"),
    )


class Reservation(StatefulMixin, TenantScoped, TimestampMixin, Base):
    __tablename__ = "booking_reservations"

    municipality_id: Mapped[int] = municipality_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    state: Mapped[str] = mapped_column(String(32))
    state_version: Mapped[int] = mapped_column(Integer, default=1)
    unit_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    facility_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    account_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    """The person who booked; ``None`` for a staff block."""
    kind: Mapped[str] = mapped_column(String(16), default="booking")
    """``booking`` (first come), ``lottery`` (won in a draw), ``waitlist`` (offered from the waitlist) or
    ``block`` (行政使用, staff)."""
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    person_class: Mapped[str] = mapped_column(String(16), default="other")
    """``resident``, ``region``, ``other`` or ``staff``: what the fee and the window were computed for."""
    fee: Mapped[int] = mapped_column(Integer, default=0)
    exemption: Mapped[str | None] = mapped_column(String(32), nullable=True)
    purpose: Mapped[str] = mapped_column(String(200), default="")
    attendees: Mapped[int | None] = mapped_column(Integer, nullable=True)
    needs_review: Mapped[bool] = mapped_column(Boolean, default=False)
    """The unit requires approval (審査), or an exemption (減免) was claimed: staff confirm it."""
    cancel_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    """Residents may cancel until then (the facility's deadline, fixed when booked)."""
    place: Mapped[str] = mapped_column(String(300), default="")
    """Facility and unit names as they were when booked, for notifications and calendars."""
    local_time: Mapped[str] = mapped_column(String(40), default="")
    """``2026-12-05 10:00–12:00`` in the municipality's time zone, for notifications."""
    occupancies: Mapped[list[Occupancy]] = relationship(
        lazy="raise", cascade="save-update", passive_deletes=True
    )
    """Only for writing a new hold's rows in the same flush as the hold; never read through (use a query)."""

    __table_args__ = (
        _fk(["unit_id"], "booking_units", "fk_booking_reservations_unit"),
        Index("ix_booking_reservations_unit_start", "municipality_id", "unit_id", "starts_at"),
        Index("ix_booking_reservations_account", "municipality_id", "account_id", "starts_at"),
        Index("ix_booking_reservations_start", "municipality_id", "starts_at"),
    )


class Occupancy(TenantScoped, Base):
    __tablename__ = "booking_occupancies"

    municipality_id: Mapped[int] = municipality_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    reservation_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    unit_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    """The reservation's start less the booked unit's setup buffer."""
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    """The reservation's end plus the booked unit's cleanup buffer."""

    __table_args__ = (
        CheckConstraint("starts_at < ends_at", name="range"),
        _fk(["reservation_id"], "booking_reservations", "fk_booking_occupancies_reservation", "CASCADE"),
        _fk(["unit_id"], "booking_units", "fk_booking_occupancies_unit"),
        Index("ix_booking_occupancies_unit_start", "municipality_id", "unit_id", "starts_at"),
        Index("ix_booking_occupancies_reservation", "municipality_id", "reservation_id"),
    )


class WaitlistEntry(TenantScoped, Base):
    """キャンセル待ち: a person waiting for a slot of a unit to come free."""

    __tablename__ = "booking_waitlist"

    municipality_id: Mapped[int] = municipality_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    unit_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    account_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    state: Mapped[str] = mapped_column(String(16), default="waiting")
    """``waiting``, ``offered`` (a hold was made for them), ``withdrawn``."""
    reservation_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        _fk(["unit_id"], "booking_units", "fk_booking_waitlist_unit"),
        Index("ix_booking_waitlist_unit_start", "municipality_id", "unit_id", "starts_at"),
    )


class LotteryApplication(TenantScoped, Base):
    """抽選: one applicant's ranked wishes for one facility and month."""

    __tablename__ = "booking_lottery_applications"

    municipality_id: Mapped[int] = municipality_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    facility_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    month: Mapped[str] = mapped_column(String(7))
    """``YYYY-MM``: the month the wishes are for."""
    account_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    group_name: Mapped[str] = mapped_column(String(100), default="")
    """The registered group (団体) applying, if any."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        _fk(["facility_id"], "booking_facilities", "fk_booking_lottery_applications_facility"),
        UniqueConstraint(
            "municipality_id",
            "facility_id",
            "month",
            "account_id",
            name="uq_booking_lottery_applications_once",
        ),
        Index("ix_booking_lottery_applications_month", "municipality_id", "month"),
    )


class LotteryWish(TenantScoped, Base):
    __tablename__ = "booking_lottery_wishes"

    municipality_id: Mapped[int] = municipality_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    application_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    rank: Mapped[int] = mapped_column(Integer)
    unit_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    won: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    """``None`` until the draw."""
    reservation_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)

    __table_args__ = (
        _fk(
            ["application_id"],
            "booking_lottery_applications",
            "fk_booking_lottery_wishes_application",
            "CASCADE",
        ),
        _fk(["unit_id"], "booking_units", "fk_booking_lottery_wishes_unit"),
        Index("ix_booking_lottery_wishes_application", "municipality_id", "application_id"),
    )


class LotteryDraw(TenantScoped, Base):
    """One draw of one month: the seed's hash is committed before the draw, the seed published after it."""

    __tablename__ = "booking_lottery_draws"

    municipality_id: Mapped[int] = municipality_column(primary_key=True)
    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    seed_sha256: Mapped[str] = mapped_column(String(64))
    seed: Mapped[str | None] = mapped_column(String(64), nullable=True)
    """Published once the draw is done."""
    committed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    drawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    winners: Mapped[int] = mapped_column(Integer, default=0)
    inputs: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    """What the draw saw (applications, units, what was blocked), so anyone can re-run it with the seed."""
