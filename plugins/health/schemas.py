"""Wire types of the health plugin (msgspec Structs, snake_case JSON)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

import msgspec


class Actor(msgspec.Struct, kw_only=True, frozen=True):
    """Who acts, as the services see it: the audit reference, the person's account, and whether staff."""

    ref: str
    account_id: uuid.UUID | None = None
    staff: bool = False


class ProfileIn(msgspec.Struct, kw_only=True, frozen=True):
    """A person with an account takes part: the birth year for age limits and bands, the district for stats."""

    birth_year: int
    district: str = ""


class PersonCreate(msgspec.Struct, kw_only=True, frozen=True):
    """A person without an account: from a paper form (staff) or by a family member acting for them."""

    name: str
    name_kana: str
    phone: str = ""
    birth_year: int
    district: str = ""
    resident: bool = False
    """Registered in this municipality: checked by staff against the form, declared by family."""


class PersonOut(msgspec.Struct, kw_only=True, frozen=True):
    id: uuid.UUID
    name: str
    name_kana: str
    birth_year: int
    district: str
    resident: bool
    short_code: str
    has_account: bool
    points: int
    """Points that can be redeemed now (this fiscal year's, less what was redeemed)."""
    points_expire_on: date


class EventCreate(msgspec.Struct, kw_only=True, frozen=True):
    title: str
    venue: str
    starts_at: datetime
    ends_at: datetime
    capacity: int
    title_kana: str = ""
    description: str = ""
    kind: Literal["event", "checkup"] = "event"
    programme: str = ""
    address: str = ""
    min_age: int | None = None
    residents_only: bool = False


class EventOut(msgspec.Struct, kw_only=True, frozen=True):
    id: uuid.UUID
    title: str
    title_kana: str
    description: str
    kind: str
    programme: str
    venue: str
    address: str
    starts_at: datetime
    ends_at: datetime
    capacity: int
    registered: int
    waitlisted: int
    min_age: int | None
    residents_only: bool


class RegistrationIn(msgspec.Struct, kw_only=True, frozen=True):
    person_id: uuid.UUID | None = None
    """Someone the caller acts for (family) or, for staff, anyone; omitted: the caller themself."""


class RegistrationOut(msgspec.Struct, kw_only=True, frozen=True):
    id: uuid.UUID
    event_id: uuid.UUID
    person_id: uuid.UUID
    state: str
    channel: str
    checked_in: bool
    waitlist_position: int | None = None


class RosterEntry(msgspec.Struct, kw_only=True, frozen=True):
    registration_id: uuid.UUID
    person_id: uuid.UUID
    name: str
    name_kana: str
    phone: str
    state: str
    channel: str
    checked_in: bool


class ScanIn(msgspec.Struct, kw_only=True, frozen=True):
    nonce: str
    """Made by the scanning device for this scan; a replay of the same nonce gets the same answer."""
    token: str | None = None
    """The QR code's text."""
    code: str | None = None
    """Or the short code, typed."""


class ScanBatch(msgspec.Struct, kw_only=True, frozen=True):
    scans: list[ScanIn]


class ScanResult(msgspec.Struct, kw_only=True, frozen=True):
    nonce: str
    outcome: str
    """``checked_in``, ``duplicate`` (already checked in: not counted again), ``not_registered``, ``unknown``
    (no such card or code here)."""
    person_id: uuid.UUID | None = None
    points: int = 0


class ScanResults(msgspec.Struct, kw_only=True, frozen=True):
    results: list[ScanResult]


class ConsentIn(msgspec.Struct, kw_only=True, frozen=True):
    person_id: uuid.UUID
    programme: str


class ConsentOut(msgspec.Struct, kw_only=True, frozen=True):
    person_id: uuid.UUID
    programme: str
    active: bool
    measures_deleted: int = 0


class MeasureIn(msgspec.Struct, kw_only=True, frozen=True):
    person_id: uuid.UUID
    event_id: uuid.UUID
    kind: Literal["grip_strength_kg", "timed_up_and_go_s"]
    phase: Literal["before", "after"]
    value: float


class MeasureOut(msgspec.Struct, kw_only=True, frozen=True):
    id: uuid.UUID
    event_id: uuid.UUID
    programme: str
    kind: str
    phase: str
    value: float
    recorded_at: datetime


class RedemptionIn(msgspec.Struct, kw_only=True, frozen=True):
    points: int
    kind: Literal["currency", "voucher"]
    person_id: uuid.UUID | None = None


class RedemptionOut(msgspec.Struct, kw_only=True, frozen=True):
    id: uuid.UUID
    person_id: uuid.UUID
    kind: str
    points: int
    voucher_code: str | None
    currency_amount: int | None
    created: bool
    """``False`` when this idempotency key was used before: the first redemption, nothing spent again."""


class StatsCell(msgspec.Struct, kw_only=True, frozen=True):
    age_band: str
    district: str
    people: int | None
    """People who attended at least once; ``None`` when fewer than the municipality's minimum (suppressed)."""
    attendances: int | None


class OutcomeCell(msgspec.Struct, kw_only=True, frozen=True):
    age_band: str
    kind: str
    people: int | None
    """People measured both before and after; ``None`` when fewer than the minimum (suppressed)."""
    mean_change: float | None
    """Mean of (last ``after`` − first ``before``) per person, rounded to 0.1; ``None`` when suppressed."""


class Stats(msgspec.Struct, kw_only=True, frozen=True):
    first: date
    last: date
    min_cell: int
    cells: list[StatsCell]
    outcomes: list[OutcomeCell]
