"""Availability of a unit or a whole facility over a date range: public, no login, no names.

Two queries whatever the range (the facility with its units, then every occupancy row of those units in the
range); the slots are computed in memory from the hours, closed days and slot scheme. A slot is taken when any
live reservation or staff block holds the unit or a unit below it at an overlapping time, buffers included: the
same rule the database enforces when booking.
"""

from __future__ import annotations

import uuid
from bisect import bisect_left
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.exceptions import InvalidInput
from plugins.booking.models import Facility, LotteryDraw, Occupancy, Unit
from plugins.booking.schemas import Availability, DayOut, SlotOut, UnitAvailability
from plugins.booking.services._calendar import day_hours, days, parse_fixed, slots_within
from plugins.booking.services._context import BookingContext
from plugins.booking.services._facilities import day_rules, descendants, get_facility, get_unit, units_of

MAX_DAYS = 92
"""The longest range one request may ask for (about three months)."""


class _Spans:
    """Occupied ranges of one unit and its parts, answering "does anything overlap [start, end)?" by bisection."""

    def __init__(self, spans: Sequence[tuple[datetime, datetime]]) -> None:
        ordered = sorted(spans)
        self.starts = [s for s, _ in ordered]
        self.max_end: list[datetime] = []
        for _, end in ordered:
            self.max_end.append(max(end, self.max_end[-1]) if self.max_end else end)

    def overlaps(self, start: datetime, end: datetime) -> bool:
        index = bisect_left(self.starts, end)  # spans[:index] start before ``end``
        return index > 0 and self.max_end[index - 1] > start


async def availability(
    session: AsyncSession,
    ctx: BookingContext,
    *,
    facility_id: uuid.UUID | None = None,
    unit_id: uuid.UUID | None = None,
    first: date,
    last: date,
) -> Availability:
    """Slots with their status for one unit, or every active unit of a facility, from ``first`` to ``last``.

    :raises InvalidInput: neither or both of facility and unit, or a range that is empty or too long.
    :raises NotFound: no such facility or unit here.
    """
    if (facility_id is None) == (unit_id is None):
        raise InvalidInput("give either facility_id or unit_id")
    if last < first:
        raise InvalidInput("last: must not be before first")
    if (last - first).days + 1 > MAX_DAYS:
        raise InvalidInput(f"last: at most {MAX_DAYS} days per request")
    if unit_id is not None:
        facility_id = (await get_unit(session, unit_id)).facility_id
    assert facility_id is not None
    facility = await get_facility(session, facility_id)
    units = await units_of(session, facility.id)
    shown = [u for u in units if u.active and (unit_id is None or u.id == unit_id)]
    range_start = datetime.combine(first, datetime.min.time(), ctx.zone) - timedelta(days=1)
    range_end = datetime.combine(last, datetime.min.time(), ctx.zone) + timedelta(days=2)
    rows = await session.execute(
        select(Occupancy.unit_id, Occupancy.starts_at, Occupancy.ends_at).where(
            Occupancy.unit_id.in_([u.id for u in units]),
            Occupancy.starts_at < range_end,
            Occupancy.ends_at > range_start,
        )
    )
    by_unit: dict[uuid.UUID, list[tuple[datetime, datetime]]] = {}
    for row_unit, starts_at, ends_at in rows:
        by_unit.setdefault(row_unit, []).append((starts_at, ends_at))
    drawn = set()
    if facility.lottery_enabled:
        drawn = set(await session.scalars(select(LotteryDraw.month).where(LotteryDraw.drawn_at.is_not(None))))
    rules = day_rules(facility)
    hours = {day: day_hours(rules, day) for day in days(first, last)}
    return Availability(
        facility_id=facility.id,
        first=first,
        last=last,
        units=[_unit_days(ctx, facility, unit, units, by_unit, drawn, hours) for unit in shown],
    )


def _unit_days(
    ctx: BookingContext,
    facility: Facility,
    unit: Unit,
    units: Sequence[Unit],
    by_unit: dict[uuid.UUID, list[tuple[datetime, datetime]]],
    drawn: set[str],
    hours: dict[date, tuple[time, time] | None],
) -> UnitAvailability:
    spans = _Spans([span for held in descendants(units, unit.id) for span in by_unit.get(held, ())])
    setup, cleanup = timedelta(minutes=unit.setup_minutes), timedelta(minutes=unit.cleanup_minutes)
    fixed, minutes, zone = parse_fixed(unit.fixed_slots), unit.slot_minutes, ctx.zone
    now = ctx.current()
    earliest = now + timedelta(hours=ctx.settings.min_notice_hours)
    horizon = now.astimezone(zone).date() + timedelta(days=ctx.settings.window_days_resident)
    lottery_month = facility.lottery_enabled
    out = []
    for day, day_span in hours.items():
        slots = slots_within(day_span, day, zone, slot_minutes=minutes, fixed=fixed)
        lottery = lottery_month and day.strftime("%Y-%m") not in drawn
        items = []
        for slot in slots:
            if spans.overlaps(slot.starts_at - setup, slot.ends_at + cleanup):
                status = "taken"
            elif slot.starts_at < earliest:
                status = "past"
            elif day > horizon:
                status = "beyond"
            elif lottery:
                status = "lottery"
            else:
                status = "free"
            items.append(
                SlotOut(starts_at=slot.starts_at, ends_at=slot.ends_at, name=slot.name, status=status)
            )
        out.append(DayOut(date=day, closed=not slots, slots=items))
    return UnitAvailability(unit_id=unit.id, name=unit.name, days=out)
