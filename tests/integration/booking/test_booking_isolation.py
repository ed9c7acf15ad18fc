"""Isolation: booking routes and services of municipality A never show or change B's facilities or bookings,
whatever was created where (hypothesis)."""

from __future__ import annotations

import uuid

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from core.platform import Platform
from plugins.booking.models import Facility, Occupancy, Reservation, Unit
from plugins.booking.schemas import ReservationCreate
from plugins.booking.services import SlotTaken, reservations
from tests.integration.booking.helpers import Town, at, fresh_day

SLUGS = ("miki", "takamatsu")
operations = st.lists(
    st.tuples(st.sampled_from(SLUGS), st.sampled_from(["gym", "book"]), st.integers(9, 20)),
    min_size=1,
    max_size=6,
)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations)
async def test_booking_of_one_municipality_never_reaches_another(
    platform: Platform, client: httpx.AsyncClient, ops: list[tuple[str, str, int]]
) -> None:
    towns = {slug: Town(platform, slug) for slug in SLUGS}
    day = fresh_day()
    units: dict[str, list[uuid.UUID]] = {}
    booked: dict[str, list[uuid.UUID]] = {}
    for slug, town in towns.items():  # what earlier examples left is part of the expectation too
        async with town.session() as session:
            units[slug] = list(await session.scalars(select(Unit.id).where(Unit.slot_minutes.is_not(None))))
            booked[slug] = list(await session.scalars(select(Reservation.id)))
    for slug, kind, hour in ops:
        town = towns[slug]
        if kind == "gym" or not units[slug]:
            gym = await town.gym()
            units[slug] += [gym.whole, gym.half_a, gym.half_b, gym.court]
            continue
        person = await town.person("resident")
        wanted = ReservationCreate(
            unit_id=units[slug][hour % 3], starts_at=at(day, hour), ends_at=at(day, hour + 1)
        )
        try:
            async with town.session() as session:
                reservation = await reservations.book(
                    session,
                    town.ctx(),
                    wanted,
                    account_id=person.account_id,
                    actor=person,
                    check_rules=False,  # type: ignore[arg-type]
                )
        except SlotTaken:  # the same slot twice in one example
            continue
        booked[slug].append(reservation.id)

    for slug, town in towns.items():
        other = next(s for s in SLUGS if s != slug)
        listed = (await client.get(town.url("/facilities"))).json()
        assert {u["id"] for f in listed for u in f["units"] if u["slot_minutes"]} == {
            str(u) for u in units[slug]
        }
        assert not {u["id"] for f in listed for u in f["units"]} & {str(u) for u in units[other]}
        staff = await town.headers("clerk", roles=("staff",))
        everything = await client.get(
            town.url("/reservations"),
            params={"first": day.isoformat(), "last": day.isoformat()},
            headers=staff,
        )
        assert {r["id"] for r in everything.json()} <= {str(r) for r in booked[slug]}
        for unit in units[other][:5]:
            assert (await client.get(town.url(f"/units/{unit}/availability"))).status_code == 404
            assert (await client.get(town.url(f"/units/{unit}/calendar.ics"))).status_code == 404
            taken = await client.post(
                town.url("/reservations"),
                json={
                    "unit_id": str(unit),
                    "starts_at": at(day, 9).isoformat(),
                    "ends_at": at(day, 10).isoformat(),
                },
                headers=await town.headers("resident"),
            )
            assert taken.status_code == 404
        for reservation in booked[other][:5]:
            assert (
                await client.post(town.url(f"/reservations/{reservation}/revoke"), headers=staff)
            ).status_code == 404
        async with town.session() as session:
            for model in (Facility, Unit, Reservation, Occupancy):
                assert set(await session.scalars(select(model.municipality_id))) <= {town.id}
            assert set(await session.scalars(select(Reservation.id))) == set(booked[slug])
    for town in towns.values():  # nothing of theirs changed state through the other's routes
        async with town.session() as session:
            states = set(await session.scalars(select(Reservation.state).where(Reservation.kind != "block")))
        assert states <= {"held"}
