"""Ledger accounts: found by (currency, kind, owner), made on first use, one of each per owner and currency."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.db import bound_municipality, utcnow
from core.exceptions import InvalidInput
from plugins.currency.config import CurrencyConfig, CurrencySettings
from plugins.currency.models import SYSTEM_OWNER, LedgerAccount
from plugins.currency.services._sql import insert_if_absent


def currency_of(settings: CurrencySettings, code: str) -> CurrencyConfig:
    """:raises InvalidInput: for a currency the municipality does not run."""
    try:
        return settings.currency(code)
    except KeyError:
        known = ", ".join(c.code for c in settings.currencies)
        raise InvalidInput(f"currency: this municipality runs {known}, not {code!r}") from None


async def find_account(
    session: AsyncSession, currency: str, kind: str, owner_id: uuid.UUID
) -> LedgerAccount | None:
    return await session.scalar(
        select(LedgerAccount).where(
            LedgerAccount.currency == currency, LedgerAccount.kind == kind, LedgerAccount.owner_id == owner_id
        )
    )


async def account(session: AsyncSession, currency: str, kind: str, owner_id: uuid.UUID) -> LedgerAccount:
    """The account, made with a zero balance if it does not exist yet (safe when two requests race to make it)."""
    found = await find_account(session, currency, kind, owner_id)
    if found is not None:
        return found
    await insert_if_absent(
        session,
        LedgerAccount,
        {
            "municipality_id": bound_municipality(session),
            "id": uuid.uuid4(),
            "currency": currency,
            "kind": kind,
            "owner_id": owner_id,
            "balance": 0,
            "created_at": utcnow(),
        },
    )
    made = await find_account(session, currency, kind, owner_id)
    assert made is not None
    return made


async def system_account(session: AsyncSession, currency: str, kind: str) -> LedgerAccount:
    """The municipality's own issuer, fee or expiry account of a currency."""
    return await account(session, currency, kind, SYSTEM_OWNER)
