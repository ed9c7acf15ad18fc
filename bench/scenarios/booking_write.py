"""Booking write path: a signed-in resident holds a free slot (仮予約) through the booking plugin.

Platform: ``POST /booking/reservations/`` with the person's session cookie and CSRF token (tenant binding by
``Host``, session check, plugin guard, permission, validation, the booking rules, the workflow's start with its
audit event and expiry timer in the outbox, the occupancy row under the no-overlap exclusion constraint).
Reference: validation, the unit read, the same occupancy insert under the same constraint (a trigger on SQLite).
Every request books a different slot, so none is refused.

Booking acts for a person: the plugin refuses API keys (a key acts for a system), so the credential checked is a
browser session's, which costs the platform one more read than a key (the person's roles).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta

import msgspec
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.load import Request
from bench.report import at_least
from bench.scenarios import _booking
from bench.scenarios._people import residents, spread
from bench.scenarios.base import REFERENCE_HOST, Scenario, host_of
from core.platform import Platform
from core.tenancy.registry import Municipality

PATH = "/booking/reservations/"


def body(unit: uuid.UUID, start: datetime) -> str:
    ends = start + timedelta(hours=1)
    return msgspec.json.encode({"unit_id": unit, "starts_at": start, "ends_at": ends}).decode()


def courts_for(count: int) -> int:
    return max(1, -(-count // _booking.SLOTS_PER_UNIT))


class BookingWrite(Scenario):
    name = "booking_write"
    title = "booking write"
    order = 30
    plugins = {"booking": _booking.SETTINGS}
    reference_module = "bench.reference.booking"
    expect_status = 201
    goals = {"ratio": at_least(0.5)}

    async def platform_requests(
        self, platform: Platform, municipalities: Sequence[Municipality], total: int
    ) -> list[Request]:
        plan = spread(municipalities, total)
        per_town: dict[int, int] = defaultdict(int)
        for _, municipality in plan:
            per_town[municipality.id] += 1
        slots: dict[int, list[tuple[uuid.UUID, datetime]]] = {}
        headers: dict[int, list[dict[str, str]]] = {}
        owner_of: dict[int, list[int]] = {}
        days = _booking.bookable_days()
        for municipality in municipalities:
            wanted = per_town[municipality.id]
            _, courts = await _booking.platform_facility(platform, municipality, courts_for(wanted))
            town_slots = list(_booking.free_slots(courts, days))[:wanted]
            chosen, count = _booking.owners([start for _, start in town_slots])
            people = await residents(platform, municipality, count)
            slots[municipality.id] = town_slots
            owner_of[municipality.id] = chosen
            headers[municipality.id] = [p.headers for p in people]
        requests = []
        for index, municipality in plan:
            unit, start = slots[municipality.id][index]
            who = owner_of[municipality.id][index]
            requests.append(
                Request(
                    method="POST",
                    path=PATH,
                    host=host_of(municipality),
                    headers=headers[municipality.id][who],
                    body=body(unit, start),
                )
            )
        return requests

    async def reference_requests(self, engine: AsyncEngine, total: int) -> list[Request]:
        _, courts = await _booking.reference_facility(engine, courts_for(total))
        slots = _booking.free_slots(courts, _booking.bookable_days())
        return [
            Request(method="POST", path=PATH, host=REFERENCE_HOST, body=body(unit, start))
            for _, (unit, start) in zip(range(total), slots, strict=False)
        ]


SCENARIO = BookingWrite()
