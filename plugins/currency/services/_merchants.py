"""Shops that take the currency, the people who work their tills, and the people who hold value."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.audit import record
from core.db import bound_municipality, utcnow
from core.exceptions import Conflict, InvalidInput, NotFound
from core.identity.models import Account
from plugins.currency.config import CurrencySettings
from plugins.currency.models import Merchant, MerchantMember
from plugins.currency.services._sql import insert_if_absent

MAX_NAME = 100


async def person(session: AsyncSession, account_id: uuid.UUID) -> Account:
    """A person who can hold value. :raises NotFound: no such account, or it is disabled."""
    found = await session.get(Account, account_id)
    if found is None or found.disabled_at is not None:
        raise NotFound(f"no active account has the id {account_id}")
    return found


async def register_merchant(
    session: AsyncSession, settings: CurrencySettings, *, name: str, category: str, actor: str
) -> Merchant:
    """:raises InvalidInput: an empty or long name, or a category the municipality does not use."""
    name = name.strip()
    if not name or len(name) > MAX_NAME or not name.isprintable():
        raise InvalidInput(f"name: must be 1 to {MAX_NAME} printable characters")
    if category not in settings.categories:
        raise InvalidInput(f"category: must be one of {', '.join(settings.categories)}, got {category!r}")
    merchant = Merchant(id=uuid.uuid4(), name=name, category=category, created_at=utcnow())
    session.add(merchant)
    await session.flush()
    record(
        session,
        actor=actor,
        action="currency.merchant_registered",
        target_type="currency_merchant",
        target_id=merchant.id,
        payload={"category": category},
    )
    return merchant


async def get_merchant(session: AsyncSession, merchant_id: uuid.UUID) -> Merchant:
    """:raises NotFound: no such shop in this municipality."""
    merchant = await session.get(Merchant, (bound_municipality(session), merchant_id))
    if merchant is None:
        raise NotFound(f"no shop {merchant_id}")
    return merchant


async def open_merchant(session: AsyncSession, merchant_id: uuid.UUID) -> Merchant:
    """:raises NotFound: no such shop. :raises Conflict: the shop is closed."""
    merchant = await get_merchant(session, merchant_id)
    if merchant.closed_at is not None:
        raise Conflict(f"the shop {merchant.name} no longer takes payments")
    return merchant


async def list_merchants(session: AsyncSession) -> list[Merchant]:
    return list(await session.scalars(select(Merchant).order_by(Merchant.name, Merchant.id)))


async def close_merchant(
    session: AsyncSession, merchant_id: uuid.UUID, *, actor: str, now: datetime | None = None
) -> Merchant:
    """Stop a shop taking payments (its balance can still be refunded from and redeemed). Idempotent."""
    merchant = await get_merchant(session, merchant_id)
    if merchant.closed_at is None:
        merchant.closed_at = now or utcnow()
        record(
            session,
            actor=actor,
            action="currency.merchant_closed",
            target_type="currency_merchant",
            target_id=merchant.id,
        )
    return merchant


async def add_member(
    session: AsyncSession, merchant_id: uuid.UUID, account_id: uuid.UUID, *, actor: str
) -> bool:
    """Let a person work a shop's till. Returns whether it changed anything."""
    await get_merchant(session, merchant_id)
    await person(session, account_id)
    added = await insert_if_absent(
        session,
        MerchantMember,
        {
            "municipality_id": bound_municipality(session),
            "merchant_id": merchant_id,
            "account_id": account_id,
            "created_at": utcnow(),
        },
    )
    if added:
        record(
            session,
            actor=actor,
            action="currency.merchant_member_added",
            target_type="currency_merchant",
            target_id=merchant_id,
            payload={"account_id": str(account_id)},
        )
    return added


async def is_member(session: AsyncSession, merchant_id: uuid.UUID, account_id: uuid.UUID | None) -> bool:
    if account_id is None:
        return False
    return (
        await session.get(MerchantMember, (bound_municipality(session), merchant_id, account_id)) is not None
    )
