"""Any sequence of bookings and cancellations: the service accepts a booking exactly when a model of the rule
says the slot is free (no false refusals, no double bookings), and the database never holds two live,
overlapping reservations of related units."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plugins.booking.schemas import ReservationCreate
from plugins.booking.services import SlotTaken, reservations
from tests.integration.booking.helpers import (
    Gym,
    Town,
    at,
    fresh_day,
    live_overlaps,
    overlapping_occupancies_sql,
)

UNITS = ("whole", "half_a", "half_b", "court")
CLEANUP = {"whole": 0, "half_a": 0, "half_b": 0, "court": 30}
RELATED = {("whole", "half_a"), ("whole", "half_b")}

operations = st.lists(
    st.one_of(
        st.tuples(st.just("book"), st.sampled_from(UNITS), st.integers(9, 19), st.integers(1, 3)),
        st.tuples(st.just("cancel"), st.integers(0, 20), st.just(0), st.just(0)),
    ),
    min_size=1,
    max_size=12,
)


def clash(a: tuple[str, datetime, datetime], b: tuple[str, datetime, datetime]) -> bool:
    related = a[0] == b[0] or (a[0], b[0]) in RELATED or (b[0], a[0]) in RELATED
    a_end = a[2] + timedelta(minutes=CLEANUP[a[0]])
    b_end = b[2] + timedelta(minutes=CLEANUP[b[0]])
    return related and a[1] < b_end and b[1] < a_end


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations)
async def test_random_bookings_and_cancellations_never_overlap(
    town: Town, gym: Gym, ops: list[tuple[str, object, int, int]]
) -> None:
    day = fresh_day()
    taro = await town.person("taro")
    live: dict[uuid.UUID, tuple[str, datetime, datetime]] = {}
    order: list[uuid.UUID] = []
    for kind, what, hour, length in ops:
        if kind == "cancel":
            if not order:
                continue
            target = order[int(what) % len(order)]  # type: ignore[call-overload]
            async with town.session() as session:
                done = await reservations.get_reservation(session, target)
                if done.state != "held":
                    continue
                await reservations.act(session, target, "cancel", actor=taro, account_id=taro.account_id)
            live.pop(target, None)
            continue
        unit = str(what)
        hour = min(hour, 21 - length)
        wanted = (unit, at(day, hour), at(day, hour + length))
        expected_ok = not any(clash(wanted, other) for other in live.values())
        try:
            async with town.session() as session:
                booked = await reservations.book(
                    session,
                    town.ctx(),
                    ReservationCreate(unit_id=getattr(gym, unit), starts_at=wanted[1], ends_at=wanted[2]),
                    account_id=taro.account_id,  # type: ignore[arg-type]
                    actor=taro,
                    check_rules=False,
                )
        except SlotTaken:
            assert not expected_ok, f"refused a free slot: {wanted} with {sorted(live.values())}"
            continue
        assert expected_ok, f"booked a taken slot: {wanted} with {sorted(live.values())}"
        live[booked.id] = wanted
        order.append(booked.id)
    assert await live_overlaps(town) == []
    assert await overlapping_occupancies_sql(town) == 0
