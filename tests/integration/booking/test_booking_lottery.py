"""抽選 and キャンセル待ち: ranked wishes drawn reproducibly from a committed seed, at most one winner per slot,
every applicant told, winners confirming, and slots that come free offered to the next person waiting."""

from __future__ import annotations

import hashlib
from datetime import date, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select

from core.audit import AuditEvent
from core.exceptions import InvalidInput
from core.notifications.models import Notification
from core.outbox import OutboxMessage
from core.workflow import fire_timer
from plugins.booking.models import LotteryWish, Reservation
from plugins.booking.schemas import LotteryApply, ReservationCreate, WaitlistCreate, WishIn
from plugins.booking.services import lottery, reminders, reservations, waitlist
from plugins.booking.workflow import RESERVATION
from tests.integration.booking.helpers import JST, Gym, Town, at, open_day


def months_ahead(n: int) -> date:
    today = datetime.now(JST).date()
    year, month = divmod(today.month - 1 + n, 12)
    return date(today.year + year, month + 1, 1)


@pytest.fixture
async def lottery_gym(town: Town) -> Gym:
    return await town.gym(lottery_enabled=True, lottery_opens_day=1, lottery_closes_day=10)


async def test_a_draw_is_reproducible_from_its_published_seed(town: Town, lottery_gym: Gym) -> None:
    gym = lottery_gym
    first = months_ahead(2)
    month = first.strftime("%Y-%m")
    applying = datetime.combine(first - timedelta(days=25), datetime.min.time(), JST).replace(day=5, hour=12)
    drawing = applying.replace(day=11)
    day = first.replace(day=16)
    x = WishIn(unit_id=gym.whole, starts_at=at(day, 10), ends_at=at(day, 12))
    y = WishIn(unit_id=gym.half_a, starts_at=at(day, 13), ends_at=at(day, 14))
    z = WishIn(
        unit_id=gym.half_b, starts_at=at(day, 10), ends_at=at(day, 11)
    )  # a part of x's whole, same time
    wishes = {"a": [x], "b": [x, y], "c": [y, z], "d": [z, x]}
    for name, wanted in wishes.items():
        person = await town.person(name)
        async with town.session() as session:
            await lottery.apply(
                session,
                town.ctx(applying),
                LotteryApply(facility_id=gym.facility_id, month=month, wishes=wanted),
                account_id=person.account_id,
                actor=f"account:{person.account_id}",  # type: ignore[arg-type]
            )
    with pytest.raises(InvalidInput, match="lottery first"):  # first come waits for the draw
        async with town.session() as session:
            someone = await town.person("e")
            await reservations.book(
                session,
                town.ctx(applying),
                ReservationCreate(unit_id=gym.court, starts_at=at(day, 9), ends_at=at(day, 10)),
                account_id=someone.account_id,
                actor=someone,
            )  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="taken until"):
        async with town.session() as session:
            await lottery.commit_seed(session, town.ctx(applying), month)

    async with town.session() as session:
        seed = await lottery.commit_seed(session, town.ctx(drawing), month)
    async with town.session() as session:
        result = await lottery.run_draw(session, town.ctx(drawing), month, seed)

    async with town.session() as session:
        events = list(
            await session.scalars(
                select(AuditEvent).where(AuditEvent.target_type == "lottery").order_by(AuditEvent.recorded_at)
            )
        )
        won = list(await session.scalars(select(Reservation).where(Reservation.kind == "lottery")))
        told = {
            n.account_id
            for n in await session.scalars(
                select(Notification).where(Notification.template == "booking.lottery_result")
            )
        }
    committed, drawn = events
    assert committed.action == "booking.lottery_seed_committed" and "seed" not in committed.payload
    assert drawn.action == "booking.lottery_drawn" and drawn.payload["seed"] == seed
    assert hashlib.sha256(drawn.payload["seed"].encode()).hexdigest() == committed.payload["seed_sha256"]
    assert told == {town.accounts[n] for n in wishes}
    assert {r.state for r in won} == {"won"} and len(won) == len(result.winners) == 2  # x or z, and y
    spans = sorted((r.unit_id, r.starts_at) for r in won)
    assert len(set(spans)) == len(spans)

    async with town.session() as session:
        verified = await lottery.verify_draw(session, month, drawn.payload["seed"])
        inputs = await lottery.load_inputs(session, town.ctx(drawing), month)
    assert verified.reproduced and verified.winners == 2
    assert (
        lottery.draw(
            inputs.applicants, seed, occupies=inputs.occupies, buffers=inputs.buffers, blocked=[], max_wins=1
        )
        == result.winners
    )
    other_seed = lottery.draw(
        inputs.applicants, "0" * 64, occupies=inputs.occupies, buffers=inputs.buffers, blocked=[], max_wins=1
    )
    assert len(other_seed) == 2

    winner = won[0]
    async with town.session() as session:
        owner = next(n for n, a in town.accounts.items() if a == winner.account_id)
        person = await town.person(owner)
        accepted = await reservations.act(
            session, winner.id, "accept", actor=person, account_id=person.account_id
        )
    assert accepted.state == "confirmed"
    async with town.session() as session:  # the other winner never confirms: the slot opens to first come
        assert await fire_timer(session, RESERVATION, won[1].id, state="won", version=2, transition="lapse")
    async with town.session() as session:
        someone = await town.person("e")
        again = await reservations.book(
            session,
            town.ctx(drawing),
            ReservationCreate(unit_id=won[1].unit_id, starts_at=won[1].starts_at, ends_at=won[1].ends_at),
            account_id=someone.account_id,
            actor=someone,  # type: ignore[arg-type]
        )
    assert again.state == "held"
    async with town.session() as session:
        assert (await lottery.verify_draw(session, month)).reproduced  # later bookings do not change the draw
        assert set(await session.scalars(select(LotteryWish.won))) == {True, False}


async def test_a_freed_slot_is_offered_to_the_first_person_waiting(
    town: Town, gym: Gym, client: httpx.AsyncClient
) -> None:
    day = open_day()
    taro, hanako, jiro = await town.person("taro"), await town.person("hanako"), await town.person("jiro")
    async with town.session() as session:
        booked = await reservations.book(
            session,
            town.ctx(),
            ReservationCreate(unit_id=gym.whole, starts_at=at(day, 10), ends_at=at(day, 11)),
            account_id=taro.account_id,
            actor=taro,
        )  # type: ignore[arg-type]
    for person in (hanako, jiro):
        async with town.session() as session:
            await waitlist.join(
                session,
                town.ctx(),
                WaitlistCreate(unit_id=gym.half_a, starts_at=at(day, 10), ends_at=at(day, 11)),
                account_id=person.account_id,
                actor="cli",
            )  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="free"):
        async with town.session() as session:
            await waitlist.join(
                session,
                town.ctx(),
                WaitlistCreate(unit_id=gym.half_a, starts_at=at(day, 12), ends_at=at(day, 13)),
                account_id=jiro.account_id,
                actor="cli",
            )  # type: ignore[arg-type]
    async with town.session() as session:
        await reservations.act(session, booked.id, "cancel", actor=taro, account_id=taro.account_id)
        queued = list(
            await session.scalars(
                select(OutboxMessage.job).where(OutboxMessage.job == "booking.offer_waitlist")
            )
        )
    assert queued == ["booking.offer_waitlist"]
    async with town.session() as session:
        offered = await waitlist.offer(session, town.ctx(), unit_id=gym.half_a)
    assert [r.account_id for r in offered] == [hanako.account_id] and offered[0].state == "held"
    async with town.session() as session:
        assert await waitlist.offer(session, town.ctx()) == []  # jiro waits on: the slot is held for hanako
        [message] = await session.scalars(
            select(Notification).where(Notification.template == "booking.waitlist_offered")
        )
    assert message.account_id == hanako.account_id
    async with town.session() as session:  # hanako lets the hold expire: the sweep offers it to jiro
        assert await fire_timer(
            session, RESERVATION, offered[0].id, state="held", version=1, transition="expire"
        )
    async with town.session() as session:
        [second] = await waitlist.offer(session, town.ctx())
    assert second.account_id == jiro.account_id


async def test_the_day_before_everyone_with_a_confirmed_booking_is_reminded_once(
    town: Town, gym: Gym
) -> None:
    day = open_day()
    taro = await town.person("taro")
    async with town.session() as session:
        booked = await reservations.book(
            session,
            town.ctx(),
            ReservationCreate(unit_id=gym.whole, starts_at=at(day, 10), ends_at=at(day, 11)),
            account_id=taro.account_id,
            actor=taro,
        )  # type: ignore[arg-type]
        await reservations.act(session, booked.id, "confirm", actor=taro, account_id=taro.account_id)
    eve = at(day - timedelta(days=1), 10)
    for _ in range(2):
        async with town.session() as session:
            await reminders.send_reminders(session, town.ctx(eve))
    async with town.session() as session:
        sent = list(
            await session.scalars(select(Notification).where(Notification.template == "booking.reminder"))
        )
        assert await reminders.send_reminders(session, town.ctx(at(day - timedelta(days=2), 10))) == 0
    assert [n.account_id for n in sent] == [taro.account_id] and "アリーナ全面" in sent[0].subject
