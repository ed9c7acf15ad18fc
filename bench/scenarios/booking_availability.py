"""Availability read: one facility with 10 hourly units over one month, with about 250 live bookings in it.

Platform: ``GET /booking/facilities/<id>/availability?first=&last=`` (public: tenant session, the facility and
its units, the month's occupancy rows, every slot's status computed, JSON). Reference: the same three reads on
the same tables and the same slots computed. Every municipality (and the reference) holds the same facility
and bookings.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime, timedelta

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.load import Request
from bench.reference.booking import occupancies, reservations
from bench.report import at_least, below
from bench.scenarios import _booking
from bench.scenarios._people import residents
from bench.scenarios.base import REFERENCE_HOST, Scenario, host_of
from core.platform import Platform
from core.tenancy.registry import Municipality
from plugins.booking.schemas import ReservationCreate
from plugins.booking.services import context_for
from plugins.booking.services import reservations as booking

UNITS = 10
BOOKINGS = 250


def month() -> tuple[date, date]:
    """The whole of the month after next: inside the window, none of it past."""
    first = (_booking.today() + timedelta(days=40)).replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    return first, following - timedelta(days=1)


def booked(courts: Sequence[uuid.UUID]) -> list[tuple[uuid.UUID, datetime]]:
    """The same ``BOOKINGS`` slots of the month on every side, spread over its days, hours and units."""
    first, last = month()
    slots = list(
        _booking.free_slots(courts, [first + timedelta(days=n) for n in range((last - first).days + 1)])
    )
    step = len(slots) // BOOKINGS
    return [slots[n * step + (n % step)] for n in range(BOOKINGS)]


def path(facility: uuid.UUID) -> str:
    first, last = month()
    return f"/booking/facilities/{facility}/availability?first={first.isoformat()}&last={last.isoformat()}"


class BookingAvailability(Scenario):
    name = "booking_availability"
    title = "availability read"
    order = 40
    plugins = {"booking": _booking.SETTINGS}
    reference_module = "bench.reference.booking"
    expect_status = 200
    goals = {"ratio": at_least(0.6), "p50_ms": below(50)}

    async def platform_requests(
        self, platform: Platform, municipalities: Sequence[Municipality], total: int
    ) -> list[Request]:
        requests = []
        for municipality in municipalities:
            gym, courts = await _booking.platform_facility(platform, municipality, UNITS)
            (person,) = await residents(platform, municipality, 1)
            ctx = context_for(platform, municipality)
            async with platform.sessions.tenant(municipality.id) as session:
                for unit, start in booked(courts):
                    data = ReservationCreate(
                        unit_id=unit, starts_at=start, ends_at=start + timedelta(hours=1)
                    )
                    await booking.book(
                        session, ctx, data, account_id=person.account_id, actor=None, check_rules=False
                    )
            requests.append(Request(method="GET", path=path(gym), host=host_of(municipality)))
        return requests

    async def reference_requests(self, engine: AsyncEngine, total: int) -> list[Request]:
        gym, courts = await _booking.reference_facility(engine, UNITS)
        held, occupied = [], []
        for unit, start in booked(courts):
            reservation = uuid.uuid4()
            ends = start + timedelta(hours=1)
            held.append({"id": reservation, "unit_id": unit, "state": "held", "starts_at": start, "ends_at": ends,
                         "created_at": start})  # fmt: skip
            occupied.append({"id": uuid.uuid4(), "reservation_id": reservation, "unit_id": unit,
                             "starts_at": start, "ends_at": ends})  # fmt: skip
        async with engine.begin() as conn:
            await conn.execute(insert(reservations), held)
            await conn.execute(insert(occupancies), occupied)
        return [Request(method="GET", path=path(gym), host=REFERENCE_HOST)]


SCENARIO = BookingAvailability()
