"""No unit is ever booked twice for overlapping time: the database refuses it, whoever asks and however fast.

Booking a unit occupies it and every part of it; buffers widen what is occupied; back-to-back bookings both
stand. A random sequence of bookings and cancellations never leaves two live reservations overlapping.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from core.exceptions import Conflict
from plugins.booking.schemas import BlockCreate, ReservationCreate
from plugins.booking.services import SlotTaken, reservations
from tests.integration.booking.helpers import (
    Gym,
    Town,
    at,
    live_overlaps,
    occupancy_count,
    open_day,
    overlapping_occupancies_sql,
)


async def hold(town: Town, gym_unit: object, start: object, end: object, who: str = "taro") -> object:
    principal = await town.person(who)
    async with town.session() as session:
        return await reservations.book(
            session,
            town.ctx(),
            ReservationCreate(unit_id=gym_unit, starts_at=start, ends_at=end),  # type: ignore[arg-type]
            account_id=principal.account_id,
            actor=principal,  # type: ignore[arg-type]
        )


async def test_back_to_back_bookings_both_stand_and_an_overlap_is_refused(town: Town, gym: Gym) -> None:
    day = open_day()
    await hold(town, gym.half_a, at(day, 10), at(day, 11), "taro")
    await hold(town, gym.half_a, at(day, 11), at(day, 12), "hanako")
    with pytest.raises(SlotTaken):
        await hold(town, gym.half_a, at(day, 10), at(day, 12), "jiro")
    assert await live_overlaps(town) == []
    assert await occupancy_count(town) == 2


async def test_the_whole_blocks_its_parts_and_a_part_blocks_the_whole(town: Town, gym: Gym) -> None:
    day = open_day()
    await hold(town, gym.whole, at(day, 10), at(day, 11), "taro")
    for part in (gym.half_a, gym.half_b):
        with pytest.raises(SlotTaken):
            await hold(town, part, at(day, 10), at(day, 11), "hanako")
    await hold(town, gym.half_a, at(day, 12), at(day, 13), "hanako")
    await hold(town, gym.half_b, at(day, 12), at(day, 13), "jiro")  # the two halves side by side
    with pytest.raises(SlotTaken):
        await hold(town, gym.whole, at(day, 12), at(day, 13), "saburo")
    assert await live_overlaps(town) == []


async def test_buffers_count_as_occupied(town: Town, gym: Gym) -> None:
    day = open_day()
    await hold(town, gym.court, at(day, 10), at(day, 11), "taro")  # 30 minutes of cleanup after
    with pytest.raises(SlotTaken):
        await hold(town, gym.court, at(day, 11), at(day, 12), "hanako")
    await hold(town, gym.court, at(day, 12), at(day, 13), "hanako")


async def test_a_cancelled_booking_frees_its_units_for_the_next_person(town: Town, gym: Gym) -> None:
    day = open_day()
    first = await hold(town, gym.whole, at(day, 10), at(day, 11), "taro")
    taro = await town.person("taro")
    async with town.session() as session:
        await reservations.act(session, first.id, "cancel", actor=taro, account_id=taro.account_id)  # type: ignore[attr-defined]
    assert await occupancy_count(town) == 0
    await hold(town, gym.half_b, at(day, 10), at(day, 11), "hanako")


async def test_a_staff_block_holds_the_unit_and_refuses_to_overlap_a_booking(town: Town, gym: Gym) -> None:
    day = open_day()
    staff = await town.person("clerk", roles=("staff",))
    async with town.session() as session:
        blocked = await reservations.block(
            session,
            town.ctx(),
            BlockCreate(unit_id=gym.whole, starts_at=at(day, 9), ends_at=at(day, 21)),
            actor=staff,
        )
    assert blocked.state == "confirmed" and blocked.kind == "block"
    with pytest.raises(SlotTaken):
        await hold(town, gym.half_a, at(day, 15), at(day, 16))
    with pytest.raises(Conflict):
        async with town.session() as session:
            await reservations.block(
                session,
                town.ctx(),
                BlockCreate(
                    unit_id=gym.half_b, starts_at=at(day, 20), ends_at=at(day + timedelta(days=1), 10)
                ),
                actor=staff,
            )
    assert await overlapping_occupancies_sql(town) == 0
