"""The currency plugin's jobs: the daily expiry sweep, the expiry notices, and publishing last week's statistics.

Each runs once a day per municipality where the plugin is enabled (``register_periodic_jobs``) and is safe to run
again: expired lots are emptied as they are moved, notices carry a key per person, currency and day, and a
published week is never published twice.
"""

from __future__ import annotations

from datetime import time
from typing import Any
from zoneinfo import ZoneInfo

import structlog

from core.db import utcnow
from core.jobs import JobContext, Periodic, job
from plugins.currency import services

log = structlog.get_logger(__name__)

EXPIRY_ACTOR = "job:currency.expire_lots"


@job(queue="default", max_retries=5)
async def expire_lots(ctx: JobContext) -> None:
    """Move every lot past its expiry to the expiry account (one transaction per wallet); forget idempotency keys
    past their 30 days."""
    now = utcnow()
    moved = wallets = 0
    while True:
        async with ctx.session() as session:
            due = await services.due_accounts(session, now, limit=500)
        if not due:
            break
        for account_id in due:
            async with ctx.session() as session:
                amount = await services.expire_account(session, account_id, now=now, actor=EXPIRY_ACTOR)
            moved += amount
            wallets += 1 if amount else 0
        if len(due) < 500:
            break
    async with ctx.session() as session:
        forgotten = await services.forget_old_keys(session, now=now)
    log.info(
        "currency.expired", municipality=ctx.municipality.slug, wallets=wallets, amount=moved, keys=forgotten
    )


@job(queue="default", max_retries=5)
async def notify_expiring(ctx: JobContext) -> None:
    """Tell each holder, once per currency and day, what of their value expires within the notice period."""
    from core.notifications import notify

    settings = ctx.settings
    tz = ZoneInfo(ctx.municipality.timezone)
    async with ctx.session() as session:
        for item in await services.expiring_soon(
            session, now=utcnow(), days=settings.expiry_notice_days, tz=tz
        ):
            config = settings.currency(item.currency)
            await notify(
                session,
                template="currency.expiry_soon",
                to=[item.person_id],
                context={
                    "currency": item.currency,
                    "currency_name": config.name,
                    "amount": item.amount,
                    "expires_on": item.expires_on.isoformat(),
                },
                key=f"currency.expiry_soon:{item.person_id}:{item.currency}:{item.expires_on.isoformat()}",
                actor="job:currency.notify_expiring",
            )


@job(queue="default", max_retries=3)
async def publish_stats(ctx: JobContext) -> None:
    """Publish last week's purchase statistics for each currency (a week already published is left alone)."""
    now = utcnow()
    tz = ZoneInfo(ctx.municipality.timezone)
    monday = services.last_finished_week(now, tz)
    async with ctx.session() as session:
        for config in ctx.settings.currencies:
            await services.publish_week(
                session,
                ctx.settings,
                tz,
                currency=config.code,
                monday=monday,
                actor="job:currency.publish_stats",
                now=now,
            )


JOBS = [expire_lots, notify_expiring, publish_stats]


def periodic_jobs() -> list[Any]:
    return [
        Periodic(job=expire_lots, daily_at=time(0, 15)),
        Periodic(job=notify_expiring, daily_at=time(9, 0)),
        Periodic(job=publish_stats, daily_at=time(3, 0)),
    ]


__all__ = ["JOBS", "expire_lots", "notify_expiring", "periodic_jobs", "publish_stats"]
