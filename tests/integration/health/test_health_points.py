"""Health points: the municipality's rules (age bonus), daily and yearly caps, expiry at the fiscal year's end,
once per (person, session, rule) whatever the retries or races, and redemption into the currency (三木町) or for
vouchers (土庄町, no currency), idempotently."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta

import httpx
from sqlalchemy import func, select

from plugins.health.models import Award, Event, Person, Registration
from plugins.health.schemas import PersonCreate, ScanIn
from plugins.health.services import checkin, people, points
from tests.integration.currency.helpers import balance_of
from tests.integration.health.helpers import JST, STAFF, Town, soon


async def _person(town: Town, birth_year: int = 1945) -> Person:
    async with town.session() as session:
        return await people.add_person(
            session,
            town.ctx(),
            STAFF,
            PersonCreate(name="試験 花子", name_kana="シケン ハナコ", birth_year=birth_year),
        )


async def _attend(town: Town, person: Person, event: Event, now: datetime | None = None) -> int:
    async with town.session() as session:
        return await points.award_attendance(session, town.ctx(now), person, event)


async def test_rules_caps_and_age_bonus(tonosho: Town) -> None:
    """土庄町: 10 per attendance, 5 more from 75, 50 per check-up; 30 a day at most (the default)."""
    old, young = await _person(tonosho, 1940), await _person(tonosho, 1960)
    day = datetime(2026, 5, 10, 10, tzinfo=JST)
    walk = await tonosho.event(starts_at=day)
    checkup = await tonosho.event(starts_at=day + timedelta(hours=3), kind="checkup")
    assert await _attend(tonosho, old, walk) == 15
    assert await _attend(tonosho, young, walk) == 10
    assert await _attend(tonosho, old, checkup) == 15  # 50, capped at 30 for the day
    assert await _attend(tonosho, old, walk) == 0  # paid before
    nextday = await tonosho.event(starts_at=day + timedelta(days=1))
    assert await _attend(tonosho, old, nextday) == 15
    async with tonosho.session() as session:
        now = tonosho.ctx(datetime(2026, 6, 1, tzinfo=JST))
        assert await points.balance(session, now, old.id) == 45
        expired = tonosho.ctx(datetime(2027, 4, 1, tzinfo=JST))  # 31 March has passed
        assert await points.balance(session, expired, old.id) == 0


async def test_voucher_redemption_without_currency(tonosho: Town, client: httpx.AsyncClient) -> None:
    ume = await tonosho.headers("ume")
    me = (await client.put(tonosho.url("/me"), json={"birth_year": 1944}, headers=ume)).json()
    async with tonosho.session() as session:
        person = await session.scalar(select(Person).where(Person.id == uuid.UUID(me["id"])))
    assert person is not None
    await _attend(tonosho, person, await tonosho.event(starts_at=soon()))
    path = tonosho.url("/redemptions")
    key = {"idempotency-key": str(uuid.uuid4())}
    refused = await client.post(
        path, json={"points": 10, "kind": "currency"}, headers=ume | key
    )  # 15 earned (75+)
    assert refused.status_code == 422 and "voucher" in refused.json()["detail"]
    first = await client.post(path, json={"points": 10, "kind": "voucher"}, headers=ume | key)
    assert first.status_code == 201, first.text
    again = await client.post(path, json={"points": 10, "kind": "voucher"}, headers=ume | key)
    assert again.json()["id"] == first.json()["id"] and again.json()["created"] is False
    assert len(first.json()["voucher_code"]) == 10
    too_many = await client.post(
        path, json={"points": 6, "kind": "voucher"}, headers=ume | {"idempotency-key": "k2"}
    )
    assert too_many.status_code == 422 and "only 5 points" in too_many.json()["detail"]


async def test_currency_redemption_pays_once(town: Town, client: httpx.AsyncClient) -> None:
    taro = await town.headers("taro")
    me = (await client.put(town.url("/me"), json={"birth_year": 1950}, headers=taro)).json()
    async with town.session() as session:
        person = await session.scalar(select(Person).where(Person.id == uuid.UUID(me["id"])))
    assert person is not None
    await _attend(town, person, await town.event(starts_at=soon()))
    key = {"idempotency-key": str(uuid.uuid4())}
    for _ in range(2):
        paid = await client.post(
            town.url("/redemptions"), json={"points": 10, "kind": "currency"}, headers=taro | key
        )
        assert paid.status_code == 201, paid.text
        assert paid.json()["currency_amount"] == 10
    assert await balance_of(town.platform, "resident", town.accounts["taro"]) == 10
    assert (await client.get(town.url("/people/mine"), headers=taro)).json()[0]["points"] == 0


async def test_concurrent_scans_check_in_and_pay_once(town: Town) -> None:
    """16 scans at once, 8 for each of two sessions the same day: each session checks in and pays once."""
    person = await _person(town, 1940)
    event = await town.event(starts_at=soon())
    other = await town.event(starts_at=soon() + timedelta(minutes=30))
    async with town.session() as session:
        for e in (event, other):
            session.add(Registration(event_id=e.id, person_id=person.id, state="registered", channel="staff"))

    async def scan(target: Event) -> str:
        async with town.session() as session:
            [result] = await checkin.check_in(
                session,
                town.ctx(),
                STAFF,
                target.id,
                [ScanIn(nonce=uuid.uuid4().hex, code=person.short_code)],
            )
            return result.outcome

    outcomes = await asyncio.gather(*(scan(event) for _ in range(8)), *(scan(other) for _ in range(8)))
    assert sorted(outcomes).count("checked_in") == 2
    async with town.session() as session:
        awarded = list(await session.scalars(select(Award)))
        assert sorted(a.event_id for a in awarded) == sorted([event.id, other.id])
        assert await session.scalar(select(func.sum(Award.points))) == 20  # within the daily cap of 30
