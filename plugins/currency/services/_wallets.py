"""What a resident sees of their own value: balances, lots and expiries, their history, their profile."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.audit import record
from core.db import utcnow
from core.exceptions import InvalidInput
from plugins.currency.config import CurrencySettings
from plugins.currency.models import Entry, HolderProfile, LedgerAccount, Lot, Merchant, Transfer
from plugins.currency.schemas import HistoryItem, LotOut, ProfileOut, WalletCurrency, WalletOut
from plugins.currency.services._accounts import currency_of

MAX_HISTORY = 200


async def wallet(
    session: AsyncSession, settings: CurrencySettings, person_id: uuid.UUID, *, now: datetime | None = None
) -> WalletOut:
    """Every currency of the municipality, with what the person holds of it (zero when nothing)."""
    now = now or utcnow()
    soon = now + timedelta(days=settings.expiry_notice_days)
    accounts = {
        a.currency: a
        for a in await session.scalars(
            select(LedgerAccount).where(LedgerAccount.kind == "resident", LedgerAccount.owner_id == person_id)
        )
    }
    lots_of: dict[uuid.UUID, list[Lot]] = {}
    if accounts:
        for lot in await session.scalars(
            select(Lot)
            .where(Lot.account_id.in_([a.id for a in accounts.values()]), Lot.remaining > 0)
            .order_by(Lot.created_at, Lot.id)
        ):
            lots_of.setdefault(lot.account_id, []).append(lot)
    out = []
    for config in settings.currencies:
        held = accounts.get(config.code)
        lots = lots_of.get(held.id, []) if held is not None else []
        out.append(
            WalletCurrency(
                currency=config.code,
                name=config.name,
                balance=held.balance if held is not None else 0,
                usable=sum(lot.remaining for lot in lots if lot.expires_at > now),
                expiring_soon=sum(lot.remaining for lot in lots if now < lot.expires_at <= soon),
                lots=[
                    LotOut(source=lot.source, remaining=lot.remaining, expires_at=lot.expires_at)
                    for lot in lots
                ],
            )
        )
    return WalletOut(currencies=out)


async def history(
    session: AsyncSession,
    settings: CurrencySettings,
    person_id: uuid.UUID,
    *,
    currency: str,
    limit: int = 50,
) -> list[HistoryItem]:
    """The person's movements in one currency, newest first. :raises InvalidInput: bad currency or limit."""
    currency_of(settings, currency)
    if not 1 <= limit <= MAX_HISTORY:
        raise InvalidInput(f"limit: must be between 1 and {MAX_HISTORY}, got {limit}")
    rows = await session.execute(
        select(Entry.transfer_id, Transfer.kind, Entry.amount, Entry.created_at, Merchant.name)
        .select_from(Entry)
        .join(Transfer, Transfer.id == Entry.transfer_id)
        .join(LedgerAccount, LedgerAccount.id == Entry.account_id)
        .outerjoin(Merchant, Merchant.id == Transfer.merchant_id)
        .where(
            LedgerAccount.kind == "resident",
            LedgerAccount.owner_id == person_id,
            LedgerAccount.currency == currency,
        )
        .order_by(Entry.created_at.desc(), Entry.transfer_id)
        .limit(limit)
    )
    return [
        HistoryItem(
            transfer_id=transfer_id,
            kind=kind,
            currency=currency,
            amount=amount,
            created_at=created_at,
            merchant_name=merchant_name,
        )
        for transfer_id, kind, amount, created_at, merchant_name in rows
    ]


async def profile(session: AsyncSession, person_id: uuid.UUID) -> ProfileOut:
    found = await session.scalar(select(HolderProfile).where(HolderProfile.account_id == person_id))
    return ProfileOut(birth_year=found.birth_year if found is not None else None)


async def set_profile(
    session: AsyncSession,
    person_id: uuid.UUID,
    birth_year: int | None,
    *,
    actor: str,
    now: datetime | None = None,
) -> ProfileOut:
    """Record (or with ``None`` remove) the year of birth. The audit log says that it changed, not to what.

    :raises InvalidInput: a year before 1900 or in the future.
    """
    now = now or utcnow()
    if birth_year is not None and not 1900 <= birth_year <= now.year:
        raise InvalidInput(f"birth_year: must be between 1900 and {now.year}, got {birth_year}")
    found = await session.scalar(select(HolderProfile).where(HolderProfile.account_id == person_id))
    if found is None:
        session.add(HolderProfile(account_id=person_id, birth_year=birth_year, updated_at=now))
    else:
        found.birth_year = birth_year
        found.updated_at = now
    record(
        session,
        actor=actor,
        action="currency.profile_updated",
        target_type="account",
        target_id=person_id,
        payload={"birth_year_given": birth_year is not None},
    )
    await session.flush()
    return ProfileOut(birth_year=birth_year)
