"""64 people race over HTTP for one slot: exactly one gets it, everyone else a 409, and the database holds no
two live bookings that overlap (checked in SQL). On PostgreSQL the exclusion constraint decides; on SQLite the
serialized write transactions and the trigger do: the race is run a second time with the service's own check
switched off, to show the database holds alone."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from plugins.booking.models import Occupancy, Reservation
from plugins.booking.schemas import ReservationCreate
from plugins.booking.services import _occupancy, reservations
from tests.integration.booking.helpers import (
    Gym,
    Town,
    at,
    live_overlaps,
    open_day,
    overlapping_occupancies_sql,
)

RACERS = 64


@pytest.mark.parametrize("precheck", [True, False], ids=["with the service's check", "database alone"])
async def test_64_clients_race_for_one_slot_and_exactly_one_wins(
    town: Town, gym: Gym, client: httpx.AsyncClient, precheck: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not precheck:  # the service's own look first only words the refusal; the database must hold alone

        async def nothing_found(*_args: object) -> None:
            return None

        monkeypatch.setattr(_occupancy, "first_overlap", nothing_found)
    day = open_day()
    headers = [await town.headers(f"racer{n}") for n in range(RACERS)]
    # Half ask for the whole arena, half for one of its halves: a part and the whole are the same slot.
    bodies = [
        {
            "unit_id": str(gym.whole if n % 2 else gym.half_a),
            "starts_at": at(day, 18).isoformat(),
            "ends_at": at(day, 19).isoformat(),
        }
        for n in range(RACERS)
    ]
    responses = await asyncio.gather(
        *(
            client.post(town.url("/reservations"), json=body, headers=h)
            for body, h in zip(bodies, headers, strict=True)
        )
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [409] * (RACERS - 1), [
        r.text for r in responses if r.status_code not in (201, 409)
    ]
    refused = next(r for r in responses if r.status_code == 409)
    assert refused.headers["content-type"].startswith("application/problem+json")
    async with town.session() as session:
        live = list(await session.scalars(select(Reservation).where(Reservation.state == "held")))
    assert len(live) == 1
    assert await overlapping_occupancies_sql(town) == 0
    assert await live_overlaps(town) == []


async def test_the_database_refuses_an_overlapping_row_written_behind_the_service(
    town: Town, gym: Gym
) -> None:
    """The guard is the database's (exclusion constraint, trigger): a raw insert of an overlapping row fails."""
    day = open_day()
    taro = await town.person("taro")
    async with town.session() as session:
        booked = await reservations.book(
            session,
            town.ctx(),
            ReservationCreate(unit_id=gym.half_b, starts_at=at(day, 10), ends_at=at(day, 11)),
            account_id=taro.account_id,
            actor=taro,  # type: ignore[arg-type]
        )
    with pytest.raises(IntegrityError):
        async with town.session() as session:
            session.add(
                Occupancy(
                    reservation_id=booked.id,
                    unit_id=gym.half_b,
                    starts_at=at(day, 10, 30),
                    ends_at=at(day, 10, 30) + timedelta(minutes=15),
                )
            )
            await session.flush()
