"""Wire types of the booking plugin (JSON, snake_case). Times are ISO 8601 with an offset."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

import msgspec


class FixedSlot(msgspec.Struct, kw_only=True, frozen=True):
    name: str
    start: str
    end: str


class UnitOut(msgspec.Struct, kw_only=True, frozen=True):
    id: uuid.UUID
    facility_id: uuid.UUID
    parent_id: uuid.UUID | None
    name: str
    capacity: int
    slot_minutes: int | None
    fixed_slots: list[FixedSlot]
    setup_minutes: int
    cleanup_minutes: int
    fee_resident: int
    fee_region: int
    fee_other: int
    requires_approval: bool
    active: bool


class UnitCreate(msgspec.Struct, kw_only=True, frozen=True):
    name: str
    parent_id: uuid.UUID | None = None
    """The unit this one is part of (half of the gym inside the whole gym)."""
    capacity: int = 1
    slot_minutes: int | None = None
    """N-minute slots; give this or ``fixed_slots`` (60-minute slots when neither is given)."""
    fixed_slots: list[FixedSlot] = msgspec.field(default_factory=list)
    setup_minutes: int = 0
    cleanup_minutes: int = 0
    fee_resident: int = 0
    fee_region: int = 0
    fee_other: int = 0
    requires_approval: bool = False


class UnitUpdate(msgspec.Struct, kw_only=True, frozen=True):
    """Fields to change; those left out stay as they are. Bookings already made keep their times and fees."""

    name: str | msgspec.UnsetType = msgspec.UNSET
    capacity: int | msgspec.UnsetType = msgspec.UNSET
    fee_resident: int | msgspec.UnsetType = msgspec.UNSET
    fee_region: int | msgspec.UnsetType = msgspec.UNSET
    fee_other: int | msgspec.UnsetType = msgspec.UNSET
    requires_approval: bool | msgspec.UnsetType = msgspec.UNSET
    active: bool | msgspec.UnsetType = msgspec.UNSET
    """``false``: the unit takes no new bookings and is left out of availability."""


class FacilityOut(msgspec.Struct, kw_only=True, frozen=True):
    id: uuid.UUID
    name: str
    name_kana: str | None
    kind: str
    address: str
    phone: str
    url: str
    latitude: float | None
    longitude: float | None
    hours: dict[str, list[str]]
    hours_exceptions: list[dict[str, Any]]
    hours_note: str
    closed_on_holidays: bool
    closed_year_end: bool
    closed_dates: list[str]
    cancel_deadline_days: int | None
    lottery_enabled: bool
    lottery_opens_day: int
    lottery_closes_day: int
    description: str
    units: list[UnitOut]


class FacilityCreate(msgspec.Struct, kw_only=True, frozen=True):
    name: str
    kind: str = "other"
    name_kana: str | None = None
    address: str = ""
    phone: str = ""
    url: str = ""
    latitude: float | None = None
    longitude: float | None = None
    hours: dict[str, list[str]] = msgspec.field(default_factory=dict)
    """Weekday ``"0"`` (Monday) to ``"6"`` (Sunday) -> ``["09:00", "21:00"]``."""
    hours_exceptions: list[dict[str, Any]] = msgspec.field(default_factory=list)
    hours_note: str = ""
    closed_on_holidays: bool = False
    closed_year_end: bool = True
    closed_dates: list[date] = msgspec.field(default_factory=list)
    cancel_deadline_days: int | None = None
    lottery_enabled: bool = False
    lottery_opens_day: int = 1
    lottery_closes_day: int = 10
    description: str = ""


class FacilityUpdate(msgspec.Struct, kw_only=True, frozen=True):
    """Fields to change; those left out stay as they are."""

    name: str | msgspec.UnsetType = msgspec.UNSET
    hours: dict[str, list[str]] | msgspec.UnsetType = msgspec.UNSET
    hours_exceptions: list[dict[str, Any]] | msgspec.UnsetType = msgspec.UNSET
    hours_note: str | msgspec.UnsetType = msgspec.UNSET
    closed_on_holidays: bool | msgspec.UnsetType = msgspec.UNSET
    closed_year_end: bool | msgspec.UnsetType = msgspec.UNSET
    closed_dates: list[date] | msgspec.UnsetType = msgspec.UNSET
    cancel_deadline_days: int | None | msgspec.UnsetType = msgspec.UNSET
    lottery_enabled: bool | msgspec.UnsetType = msgspec.UNSET
    lottery_opens_day: int | msgspec.UnsetType = msgspec.UNSET
    lottery_closes_day: int | msgspec.UnsetType = msgspec.UNSET
    description: str | msgspec.UnsetType = msgspec.UNSET


class SlotOut(msgspec.Struct, kw_only=True, frozen=True):
    starts_at: datetime
    ends_at: datetime
    name: str
    status: str
    """``free``; ``taken`` (booked, held or blocked); ``past`` (too late to book); ``lottery`` (drawn by lottery
    first); ``beyond`` (outside the booking window)."""


class DayOut(msgspec.Struct, kw_only=True, frozen=True):
    date: date
    closed: bool
    slots: list[SlotOut]


class UnitAvailability(msgspec.Struct, kw_only=True, frozen=True):
    unit_id: uuid.UUID
    name: str
    days: list[DayOut]


class Availability(msgspec.Struct, kw_only=True, frozen=True):
    facility_id: uuid.UUID
    first: date
    last: date
    units: list[UnitAvailability]


class ReservationCreate(msgspec.Struct, kw_only=True, frozen=True):
    unit_id: uuid.UUID
    starts_at: datetime
    ends_at: datetime
    purpose: str = ""
    attendees: int | None = None
    exemption: str | None = None
    """減免 code (the municipality's setting ``exemptions``); the booking then goes to staff review."""


class BlockCreate(msgspec.Struct, kw_only=True, frozen=True):
    unit_id: uuid.UUID
    starts_at: datetime
    ends_at: datetime
    reason: str = "行政使用"


class ReservationOut(msgspec.Struct, kw_only=True, frozen=True):
    id: uuid.UUID
    unit_id: uuid.UUID
    facility_id: uuid.UUID
    kind: str
    state: str
    version: int
    starts_at: datetime
    ends_at: datetime
    account_id: uuid.UUID | None
    """Who booked (``None``: a staff block)."""
    place: str
    person_class: str
    fee: int
    exemption: str | None
    needs_review: bool
    cancel_until: datetime | None
    purpose: str
    attendees: int | None


class TransitionIn(msgspec.Struct, kw_only=True, frozen=True):
    version: int | None = None
    """The version the client saw: the transition applies only to it (409 otherwise)."""


class WaitlistCreate(msgspec.Struct, kw_only=True, frozen=True):
    unit_id: uuid.UUID
    starts_at: datetime
    ends_at: datetime


class WaitlistOut(msgspec.Struct, kw_only=True, frozen=True):
    id: uuid.UUID
    unit_id: uuid.UUID
    starts_at: datetime
    ends_at: datetime
    state: str
    position: int
    reservation_id: uuid.UUID | None


class WishIn(msgspec.Struct, kw_only=True, frozen=True):
    unit_id: uuid.UUID
    starts_at: datetime
    ends_at: datetime


class LotteryApply(msgspec.Struct, kw_only=True, frozen=True):
    facility_id: uuid.UUID
    month: str
    """``YYYY-MM``, the month the wishes are for."""
    wishes: list[WishIn]
    """In order of preference, first the most wanted."""
    group_name: str = ""


class WishOut(msgspec.Struct, kw_only=True, frozen=True):
    rank: int
    unit_id: uuid.UUID
    starts_at: datetime
    ends_at: datetime
    won: bool | None
    reservation_id: uuid.UUID | None


class LotteryApplicationOut(msgspec.Struct, kw_only=True, frozen=True):
    id: uuid.UUID
    facility_id: uuid.UUID
    month: str
    group_name: str
    wishes: list[WishOut]
