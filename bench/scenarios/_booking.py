"""What the booking scenarios share: the facility both sides hold, its free slots, and the plugin's settings.

The facility is open 09:00 to 21:00 every day of the year (no closed days, so both sides offer the same slots),
with plain hourly units: the reference computes the same slots without the plugin's calendar.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from datetime import date, datetime, timedelta
from datetime import time as clock
from zoneinfo import ZoneInfo

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.reference.booking import facilities as ref_facilities
from bench.reference.booking import units as ref_units
from core.platform import Platform
from core.tenancy.registry import Municipality
from plugins.booking.schemas import FacilityCreate, UnitCreate
from plugins.booking.services import facilities

OPENS, CLOSES = 9, 21
ZONE = ZoneInfo("Asia/Tokyo")
MONTHLY_LIMIT = 100
SETTINGS = {
    "window_days_resident": 366,
    "window_days_region": 366,
    "window_days_other": 366,
    "min_notice_hours": 0,
    "max_bookings_per_month": MONTHLY_LIMIT,
}
"""A year's window and the largest monthly allowance, so a fixed run of distinct bookings needs few people."""
FIRST_DAY = 2
LAST_DAY = 360
"""Bookable days from today: inside the window whatever the hour and zone."""
SLOTS_PER_UNIT = (LAST_DAY - FIRST_DAY + 1) * (CLOSES - OPENS)


def today() -> date:
    return datetime.now(ZONE).date()


async def platform_facility(
    platform: Platform, municipality: Municipality, unit_count: int
) -> tuple[uuid.UUID, list[uuid.UUID]]:
    """A gym of ``municipality`` with ``unit_count`` hourly courts."""
    hours = {str(d): [f"{OPENS:02}:00", f"{CLOSES:02}:00"] for d in range(7)}
    async with platform.sessions.tenant(municipality.id) as session:
        gym = await facilities.create_facility(
            session,
            FacilityCreate(
                name="総合体育館",
                kind="gymnasium",
                hours=hours,
                closed_on_holidays=False,
                closed_year_end=False,
            ),
        )
        courts = [
            (await facilities.add_unit(session, gym.id, UnitCreate(name=f"コート{n + 1:02}"))).id
            for n in range(unit_count)
        ]
    return gym.id, courts


async def reference_facility(engine: AsyncEngine, unit_count: int) -> tuple[uuid.UUID, list[uuid.UUID]]:
    gym, courts = uuid.uuid4(), [uuid.uuid4() for _ in range(unit_count)]
    async with engine.begin() as conn:
        await conn.execute(
            insert(ref_facilities),
            {"id": gym, "name": "総合体育館", "opens": f"{OPENS:02}:00", "closes": f"{CLOSES:02}:00"},
        )
        await conn.execute(
            insert(ref_units),
            [
                {
                    "id": c,
                    "facility_id": gym,
                    "name": f"コート{n + 1:02}",
                    "setup_minutes": 0,
                    "cleanup_minutes": 0,
                }
                for n, c in enumerate(courts)
            ],
        )
    return gym, courts


def free_slots(courts: Sequence[uuid.UUID], days: Sequence[date]) -> Iterator[tuple[uuid.UUID, datetime]]:
    """Every hourly slot of every court on ``days``, day by day: (court, start)."""
    for day in days:
        for hour in range(OPENS, CLOSES):
            start = datetime.combine(day, clock(hour), ZONE)
            for court in courts:
                yield court, start


def bookable_days() -> list[date]:
    first = today()
    return [first + timedelta(days=n) for n in range(FIRST_DAY, LAST_DAY + 1)]


def owners(starts: Sequence[datetime], limit: int = MONTHLY_LIMIT) -> tuple[list[int], int]:
    """Who books each slot so nobody holds more than ``limit`` a month: an owner index per slot, and how many
    owners that takes."""
    counts: dict[tuple[int, str], int] = {}
    chosen, people = [], 1
    for n, start in enumerate(starts):
        month = start.strftime("%Y-%m")
        who = n % people
        while counts.get((who, month), 0) >= limit:
            who += 1
            people = max(people, who + 1)
        counts[(who, month)] = counts.get((who, month), 0) + 1
        chosen.append(who)
    return chosen, people
