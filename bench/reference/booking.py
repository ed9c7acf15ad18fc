"""Reference booking: hold a slot under the database's no-overlap guard, and a facility's availability.

The same wire shapes and database guard as the booking plugin (plugins/booking): one occupancy row per booked
unit over the slot widened by the unit's buffers, refused by the database when it overlaps another (an exclusion
constraint on PostgreSQL, a trigger on SQLite; SQLite's write transactions hold the lock from ``BEGIN``). No
municipality, no person, no rules, workflow, audit event or outbox; hourly slots within opening hours.
"""

from __future__ import annotations

import uuid
from bisect import bisect_left
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import msgspec
from litestar import Response, get, post
from litestar.datastructures import State
from litestar.exceptions import NotFoundException, ValidationException
from sqlalchemy import (
    DDL,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Uuid,
    event,
    insert,
    select,
)
from sqlalchemy.exc import DBAPIError

from core.db import UTCDateTime

ZONE = ZoneInfo("Asia/Tokyo")
MAX_DAYS = 92

METADATA = MetaData()
facilities = Table(
    "facilities",
    METADATA,
    Column("id", Uuid, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("opens", String(5), nullable=False),
    Column("closes", String(5), nullable=False),
)
units = Table(
    "units",
    METADATA,
    Column("id", Uuid, primary_key=True),
    Column("facility_id", Uuid, ForeignKey("facilities.id"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("setup_minutes", Integer, nullable=False, default=0),
    Column("cleanup_minutes", Integer, nullable=False, default=0),
    Index("ix_units_facility", "facility_id"),
)
reservations = Table(
    "reservations",
    METADATA,
    Column("id", Uuid, primary_key=True),
    Column("unit_id", Uuid, ForeignKey("units.id"), nullable=False),
    Column("state", String(32), nullable=False),
    Column("starts_at", UTCDateTime(), nullable=False),
    Column("ends_at", UTCDateTime(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)
occupancies = Table(
    "occupancies",
    METADATA,
    Column("id", Uuid, primary_key=True),
    Column("reservation_id", Uuid, ForeignKey("reservations.id", ondelete="CASCADE"), nullable=False),
    Column("unit_id", Uuid, ForeignKey("units.id"), nullable=False),
    Column("starts_at", UTCDateTime(), nullable=False),
    Column("ends_at", UTCDateTime(), nullable=False),
    Index("ix_occupancies_unit_start", "unit_id", "starts_at"),
)
for ddl in (
    "CREATE EXTENSION IF NOT EXISTS btree_gist",
    "ALTER TABLE occupancies ADD CONSTRAINT ex_occupancies_no_overlap "
    "EXCLUDE USING gist (unit_id WITH =, tstzrange(starts_at, ends_at, '[)') WITH &&)",
):
    event.listen(occupancies, "after_create", DDL(ddl).execute_if(dialect="postgresql"))
event.listen(
    occupancies,
    "after_create",
    DDL(
        "CREATE TRIGGER occupancies_no_overlap BEFORE INSERT ON occupancies WHEN EXISTS (SELECT 1 FROM "
        "occupancies o WHERE o.unit_id = NEW.unit_id AND o.starts_at < NEW.ends_at AND NEW.starts_at < o.ends_at) "
        "BEGIN SELECT RAISE(ABORT, 'occupancies overlap'); END"
    ).execute_if(dialect="sqlite"),
)
OVERLAP_STATES = {"23P01", "40P01"}


class ReservationIn(msgspec.Struct, kw_only=True, frozen=True):
    unit_id: uuid.UUID
    starts_at: datetime
    ends_at: datetime
    purpose: str = ""


class ReservationOut(msgspec.Struct, kw_only=True, frozen=True):
    id: uuid.UUID
    unit_id: uuid.UUID
    state: str
    starts_at: datetime
    ends_at: datetime


class SlotOut(msgspec.Struct, kw_only=True, frozen=True):
    starts_at: datetime
    ends_at: datetime
    status: str


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


def _taken() -> Response[dict[str, str]]:
    return Response({"title": "Slot taken"}, status_code=409)


def _is_overlap(exc: DBAPIError) -> bool:
    orig = getattr(exc, "orig", None)
    state = getattr(orig, "sqlstate", None) or getattr(getattr(orig, "__cause__", None), "sqlstate", None)
    return state in OVERLAP_STATES or "occupancies overlap" in str(orig)


@post("/booking/reservations/", status_code=201)
async def hold(state: State, data: ReservationIn) -> ReservationOut | Response[dict[str, str]]:
    for value, field in ((data.starts_at, "starts_at"), (data.ends_at, "ends_at")):
        if value.tzinfo is None:
            raise ValidationException(f"{field}: needs a time zone offset")
    if data.ends_at <= data.starts_at:
        raise ValidationException("ends_at: must be later than starts_at")
    if len(data.purpose) > 200:
        raise ValidationException("purpose: at most 200 characters")
    row = {
        "id": uuid.uuid4(),
        "unit_id": data.unit_id,
        "state": "held",
        "starts_at": data.starts_at,
        "ends_at": data.ends_at,
        "created_at": datetime.now(UTC),
    }
    try:
        async with state.engine.begin() as conn:
            unit = (
                await conn.execute(
                    select(units.c.setup_minutes, units.c.cleanup_minutes).where(units.c.id == data.unit_id)
                )
            ).first()
            if unit is None:
                raise NotFoundException("no such unit")
            starts_at = data.starts_at - timedelta(minutes=unit.setup_minutes)
            ends_at = data.ends_at + timedelta(minutes=unit.cleanup_minutes)
            clash = await conn.scalar(
                select(occupancies.c.id)
                .where(
                    occupancies.c.unit_id == data.unit_id,
                    occupancies.c.starts_at < ends_at,
                    occupancies.c.ends_at > starts_at,
                )
                .limit(1)
            )
            if clash is not None:
                return _taken()
            await conn.execute(insert(reservations), row)
            await conn.execute(
                insert(occupancies),
                {
                    "id": uuid.uuid4(),
                    "reservation_id": row["id"],
                    "unit_id": data.unit_id,
                    "starts_at": starts_at,
                    "ends_at": ends_at,
                },
            )
    except DBAPIError as exc:
        if _is_overlap(exc):
            return _taken()
        raise
    return ReservationOut(
        id=row["id"], unit_id=data.unit_id, state="held", starts_at=data.starts_at, ends_at=data.ends_at
    )


class _Spans:
    """Occupied ranges of one unit: "does anything overlap [start, end)?" by bisection (as the plugin does)."""

    def __init__(self, spans: list[tuple[datetime, datetime]]) -> None:
        ordered = sorted(spans)
        self.starts = [s for s, _ in ordered]
        self.max_end: list[datetime] = []
        for _, end in ordered:
            self.max_end.append(max(end, self.max_end[-1]) if self.max_end else end)

    def overlaps(self, start: datetime, end: datetime) -> bool:
        index = bisect_left(self.starts, end)
        return index > 0 and self.max_end[index - 1] > start


@get("/booking/facilities/{facility_id:uuid}/availability")
async def availability(state: State, facility_id: uuid.UUID, first: date, last: date) -> Availability:
    if last < first or (last - first).days + 1 > MAX_DAYS:
        raise ValidationException(f"last: from first, at most {MAX_DAYS} days")
    range_start = datetime.combine(first, time(), ZONE) - timedelta(days=1)
    range_end = datetime.combine(last, time(), ZONE) + timedelta(days=2)
    async with state.engine.begin() as conn:
        facility = (await conn.execute(select(facilities).where(facilities.c.id == facility_id))).first()
        if facility is None:
            raise NotFoundException("no such facility")
        unit_rows = (
            await conn.execute(select(units).where(units.c.facility_id == facility_id).order_by(units.c.name))
        ).all()
        rows = await conn.execute(
            select(occupancies.c.unit_id, occupancies.c.starts_at, occupancies.c.ends_at).where(
                occupancies.c.unit_id.in_([u.id for u in unit_rows]),
                occupancies.c.starts_at < range_end,
                occupancies.c.ends_at > range_start,
            )
        )
        by_unit: dict[uuid.UUID, list[tuple[datetime, datetime]]] = {}
        for unit_id, starts_at, ends_at in rows:
            by_unit.setdefault(unit_id, []).append((starts_at, ends_at))
    opens, closes = time.fromisoformat(facility.opens), time.fromisoformat(facility.closes)
    now = datetime.now(UTC)
    out = []
    for unit in unit_rows:
        spans = _Spans(by_unit.get(unit.id, []))
        setup, cleanup = timedelta(minutes=unit.setup_minutes), timedelta(minutes=unit.cleanup_minutes)
        days = []
        for offset in range((last - first).days + 1):
            day = first + timedelta(days=offset)
            slot = datetime.combine(day, opens, ZONE)
            end_of_day = datetime.combine(day, closes, ZONE)
            slots = []
            while slot + timedelta(hours=1) <= end_of_day:
                ends = slot + timedelta(hours=1)
                taken = spans.overlaps(slot - setup, ends + cleanup)
                status = "taken" if taken else "past" if slot < now else "free"
                slots.append(SlotOut(starts_at=slot, ends_at=ends, status=status))
                slot = ends
            days.append(DayOut(date=day, closed=not slots, slots=slots))
        out.append(UnitAvailability(unit_id=unit.id, name=unit.name, days=days))
    return Availability(facility_id=facility_id, first=first, last=last, units=out)


ROUTES = [hold, availability]
