"""Expiry: the daily job moves expired value to the expiry account (moved, never destroyed) and tells holders a
week before, once, in their language."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from core.db import utcnow
from core.jobs import JobContext
from core.notifications.models import Notification
from core.platform import Platform
from plugins.currency import services, tasks
from plugins.currency.models import Lot
from tests.integration.currency.helpers import (
    COIN,
    balance_of,
    issue,
    make_person,
    make_shop,
    pay,
    tenant,
    verified,
)


def context(platform: Platform, slug: str = "miki") -> JobContext:
    return JobContext(platform, platform.municipality(slug), "currency", job="currency.test")


async def test_the_daily_job_moves_expired_value_to_the_expiry_account(platform: Platform) -> None:
    resident, shop = await make_person(platform), await make_shop(platform)
    now = utcnow()
    await issue(platform, resident, 1_000, 300, now=now - timedelta(days=181))  # both lots expired (180 days)
    await issue(platform, resident, 500, 0, now=now - timedelta(days=10))
    await pay(platform, resident, shop, 200)  # from the live lot: the expired ones cannot be spent

    await tasks.expire_lots(context(platform))
    await tasks.expire_lots(context(platform))  # a second run finds nothing more

    assert await balance_of(platform, "resident", resident) == 300
    async with tenant(platform) as session:
        sink = await services.system_account(session, COIN, "expiry")
        lots = list(await session.scalars(select(Lot).order_by(Lot.created_at, Lot.source)))
    assert sink.balance == 1_300
    assert [lot.remaining for lot in lots] == [0, 0, 300]
    report = await verified(platform)
    assert (
        report.ok and report.currencies[0].expired == 1_300 and report.currencies[0].held == 500
    )  # 300 + shop's 200


async def test_holders_are_told_a_week_before_once_per_day_of_expiry(platform: Platform) -> None:
    soon, later = await make_person(platform), await make_person(platform)
    now = utcnow()
    await issue(platform, soon, 800, 0, now=now - timedelta(days=175))  # expires in 5 days
    await issue(platform, later, 800, 0, now=now - timedelta(days=100))  # expires in 80 days

    await tasks.notify_expiring(context(platform))
    await tasks.notify_expiring(context(platform))

    async with tenant(platform) as session:
        sent = list(await session.scalars(select(Notification)))
    assert [n.account_id for n in sent] == [soon]
    assert sent[0].template == "currency.expiry_soon"
    assert "みきコイン" in sent[0].subject and "800" in sent[0].body


async def test_the_daily_job_forgets_idempotency_keys_after_thirty_days(platform: Platform) -> None:
    from plugins.currency.models import IdempotencyKey

    async with tenant(platform) as session:
        for key, age in (("old", 31), ("recent", 29)):
            session.add(
                IdempotencyKey(
                    caller="cli", key=key, request_hash="0" * 64, created_at=utcnow() - timedelta(days=age)
                )
            )
    await tasks.expire_lots(context(platform))
    async with tenant(platform) as session:
        assert list(await session.scalars(select(IdempotencyKey.key))) == ["recent"]
