"""Expiry: value past its lot's expiry is moved (never destroyed) to the currency's expiry account, and holders are
told beforehand."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.db import bound_municipality
from plugins.currency.models import LedgerAccount, Lot
from plugins.currency.services._accounts import system_account
from plugins.currency.services._ledger import Leg, lock_accounts, post


class Expiring(msgspec.Struct, kw_only=True, frozen=True):
    """Value one person holds that expires on one day."""

    person_id: uuid.UUID
    currency: str
    amount: int
    expires_on: date


async def due_accounts(session: AsyncSession, now: datetime, *, limit: int = 1000) -> list[uuid.UUID]:
    """Resident accounts holding value past its expiry."""
    return list(
        await session.scalars(
            select(Lot.account_id)
            .where(Lot.remaining > 0, Lot.expires_at <= now)
            .group_by(Lot.account_id)
            .order_by(Lot.account_id)
            .limit(limit)
        )
    )


async def expire_account(session: AsyncSession, account_id: uuid.UUID, *, now: datetime, actor: str) -> int:
    """Move one account's expired value to the expiry account, in one transfer. Returns the amount moved (0 when
    there was none: another run got there first)."""
    wallet = await session.get(LedgerAccount, (bound_municipality(session), account_id))
    if wallet is None or wallet.kind != "resident":
        return 0
    sink = await system_account(session, wallet.currency, "expiry")
    await lock_accounts(session, [wallet, sink])
    lots = list(
        await session.scalars(
            select(Lot)
            .where(Lot.account_id == wallet.id, Lot.remaining > 0, Lot.expires_at <= now)
            .order_by(Lot.created_at)
        )
    )
    amount = sum(lot.remaining for lot in lots)
    if amount == 0:
        return 0
    await post(
        session,
        currency=wallet.currency,
        kind="expire",
        legs=[Leg(wallet, -amount, draws=[(lot, lot.remaining) for lot in lots]), Leg(sink, amount)],
        actor=actor,
        now=now,
        audit={"amount": amount, "lots": len(lots)},
    )
    return amount


async def expiring_soon(session: AsyncSession, *, now: datetime, days: int, tz: ZoneInfo) -> list[Expiring]:
    """Value that expires within ``days``, per person, currency and day (in the municipality's time zone)."""
    rows = await session.execute(
        select(LedgerAccount.owner_id, LedgerAccount.currency, Lot.remaining, Lot.expires_at)
        .join(LedgerAccount, LedgerAccount.id == Lot.account_id)
        .where(Lot.remaining > 0, Lot.expires_at > now, Lot.expires_at <= now + timedelta(days=days))
    )
    totals: dict[tuple[uuid.UUID, str, date], int] = defaultdict(int)
    for owner, currency, remaining, expires_at in rows:
        totals[(owner, currency, expires_at.astimezone(tz).date())] += remaining
    return [
        Expiring(person_id=owner, currency=currency, amount=amount, expires_on=day)
        for (owner, currency, day), amount in sorted(
            totals.items(), key=lambda item: (item[0][2], str(item[0][0]))
        )
    ]
