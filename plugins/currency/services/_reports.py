"""Settlement statements per shop and period, and the outstanding balance at the legal reference dates.

Both are read from the entries (never from the running balances), so they can be made for any past period and
agree with ``verify``. Days are those of the municipality's time zone; a period ``start..end`` includes both days.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.db import utcnow
from core.exceptions import InvalidInput
from plugins.currency.config import CurrencySettings
from plugins.currency.models import SYSTEM_OWNER, Entry, LedgerAccount, Merchant, Transfer
from plugins.currency.schemas import OutstandingOut, StatementOut
from plugins.currency.services._accounts import currency_of, find_account
from plugins.currency.services._merchants import get_merchant, list_merchants

REFERENCE_DATES = ((3, 31), (9, 30))
"""基準日 of the 資金決済に関する法律 for prepaid value: the end of March and of September."""
MAX_PERIOD_DAYS = 366


def midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tz)


def check_period(start: date, end: date) -> None:
    if end < start:
        raise InvalidInput(f"to: must not be before from ({start.isoformat()}), got {end.isoformat()}")
    if (end - start).days >= MAX_PERIOD_DAYS:
        raise InvalidInput(f"to: a period may be at most {MAX_PERIOD_DAYS} days long")


async def statement(
    session: AsyncSession,
    settings: CurrencySettings,
    tz: ZoneInfo,
    *,
    merchant_id: uuid.UUID,
    currency: str,
    start: date,
    end: date,
) -> StatementOut:
    """What one shop received, gave back and was paid out in a period, and what it is owed at its end.

    :raises InvalidInput: unknown currency or a bad period. :raises NotFound: no such shop.
    """
    currency_of(settings, currency)
    check_period(start, end)
    merchant = await get_merchant(session, merchant_id)
    return await _statement(session, merchant, currency, start, end, tz)


async def statements(
    session: AsyncSession, settings: CurrencySettings, tz: ZoneInfo, *, currency: str, start: date, end: date
) -> list[StatementOut]:
    """Every shop's statement for the period (the settlement run)."""
    currency_of(settings, currency)
    check_period(start, end)
    return [await _statement(session, m, currency, start, end, tz) for m in await list_merchants(session)]


async def _sums_by_kind(
    session: AsyncSession,
    account_id: uuid.UUID,
    since: datetime,
    until: datetime,
    merchant_id: uuid.UUID | None,
) -> dict[str, tuple[int, int]]:
    """Per transfer kind: how many transfers touched the account in the period, and what they added to it."""
    conditions = [Entry.account_id == account_id, Entry.created_at >= since, Entry.created_at < until]
    if merchant_id is not None:
        conditions.append(Transfer.merchant_id == merchant_id)
    rows = await session.execute(
        select(Transfer.kind, func.count(Transfer.id), func.coalesce(func.sum(Entry.amount), 0))
        .select_from(Entry)
        .join(Transfer, Transfer.id == Entry.transfer_id)
        .where(*conditions)
        .group_by(Transfer.kind)
    )
    return {kind: (int(count), int(total)) for kind, count, total in rows}


async def _statement(
    session: AsyncSession, merchant: Merchant, currency: str, start: date, end: date, tz: ZoneInfo
) -> StatementOut:
    since, until = midnight(start, tz), midnight(end + timedelta(days=1), tz)
    till = await find_account(session, currency, "merchant", merchant.id)
    opening = 0
    sums: dict[str, tuple[int, int]] = {}
    fee_sums: dict[str, tuple[int, int]] = {}
    if till is not None:
        opening = int(
            await session.scalar(
                select(func.coalesce(func.sum(Entry.amount), 0)).where(
                    Entry.account_id == till.id, Entry.created_at < since
                )
            )
            or 0
        )
        sums = await _sums_by_kind(session, till.id, since, until, None)
        fee_account = await find_account(session, currency, "fee", SYSTEM_OWNER)
        if fee_account is not None:
            fee_sums = await _sums_by_kind(session, fee_account.id, since, until, merchant.id)
    payments, received = sums.get("payment", (0, 0))
    refunds, refunded_by_shop = sums.get("refund", (0, 0))
    payment_fees = fee_sums.get("payment", (0, 0))[1]
    refund_fees = fee_sums.get("refund", (0, 0))[1]
    return StatementOut(
        merchant_id=merchant.id,
        merchant_name=merchant.name,
        currency=currency,
        start=start,
        end=end,
        opening_balance=opening,
        payments=payments,
        gross=received + payment_fees,
        fees=payment_fees + refund_fees,
        refunds=refunds,
        refunded=-(refunded_by_shop + refund_fees),
        redeemed=-sums.get("redeem", (0, 0))[1],
        corrections=sums.get("reversal", (0, 0))[1],
        closing_balance=opening + sum(total for _, total in sums.values()),
    )


async def outstanding(
    session: AsyncSession,
    settings: CurrencySettings,
    tz: ZoneInfo,
    *,
    currency: str,
    reference_date: date,
    now: datetime | None = None,
) -> OutstandingOut:
    """Value outstanding at the end of a reference date (3/31 or 9/30), from the entries made before then.

    :raises InvalidInput: another date, a date not over yet, or an unknown currency.
    """
    now = now or utcnow()
    currency_of(settings, currency)
    if (reference_date.month, reference_date.day) not in REFERENCE_DATES:
        raise InvalidInput(
            f"date: the reference dates are March 31 and September 30, got {reference_date.isoformat()}"
        )
    as_of = midnight(reference_date + timedelta(days=1), tz)
    if as_of > now:
        raise InvalidInput(f"date: {reference_date.isoformat()} is not over yet")
    positive = case((Entry.amount > 0, Entry.amount), else_=0)
    negative = case((Entry.amount < 0, -Entry.amount), else_=0)
    rows = await session.execute(
        select(
            LedgerAccount.kind,
            func.coalesce(func.sum(Entry.amount), 0),
            func.coalesce(func.sum(positive), 0),
            func.coalesce(func.sum(negative), 0),
        )
        .select_from(Entry)
        .join(LedgerAccount, LedgerAccount.id == Entry.account_id)
        .where(Entry.currency == currency, Entry.created_at < as_of)
        .group_by(LedgerAccount.kind)
    )
    by_kind = {kind: (int(net), int(credits), int(debits)) for kind, net, credits, debits in rows}
    _, redeemed, issued = by_kind.get("issuer", (0, 0, 0))
    residents = by_kind.get("resident", (0, 0, 0))[0]
    merchants = by_kind.get("merchant", (0, 0, 0))[0]
    fees = by_kind.get("fee", (0, 0, 0))[0]
    expired = by_kind.get("expiry", (0, 0, 0))[0]
    return OutstandingOut(
        currency=currency,
        reference_date=reference_date,
        as_of=as_of,
        issued=issued,
        redeemed=redeemed,
        expired=expired,
        residents=residents,
        merchants=merchants,
        fees=fees,
        outstanding=issued - redeemed - expired,
    )
