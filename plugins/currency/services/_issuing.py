"""Value coming in and going out: issue (top-up by staff), award (from other plugins), redeem (paying a shop
out), and reversing transfers that correct a mistake."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.db import bound_municipality, utcnow
from core.exceptions import Conflict, InvalidInput, NotFound
from plugins.currency.config import CurrencySettings
from plugins.currency.models import Entry, LedgerAccount, Lot, Transfer
from plugins.currency.schemas import AwardOut, TransferOut
from plugins.currency.services._accounts import account, currency_of, find_account, system_account
from plugins.currency.services._errors import InsufficientBalance
from plugins.currency.services._ledger import DuplicateTransfer, Leg, NewLot, lock_accounts, post
from plugins.currency.services._merchants import get_merchant, person

REVERSIBLE = ("issue", "award", "refund", "redeem")
"""A payment is corrected by a refund; an expiry or a reversal is not undone."""
SOURCE_PATTERN = re.compile(r"^[a-z][a-z0-9_]{1,39}$")
MAX_REFERENCE = 200


def whole(field: str, value: int, *, minimum: int = 1) -> int:
    """:raises InvalidInput: ``value`` is not an integer of at least ``minimum``."""
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise InvalidInput(f"{field}: must be a whole number of at least {minimum}, got {value!r}")
    return value


def transfer_out(transfer: Transfer, amount: int, balance: int | None = None) -> TransferOut:
    return TransferOut(
        id=transfer.id,
        kind=transfer.kind,
        currency=transfer.currency,
        amount=amount,
        created_at=transfer.created_at,
        merchant_id=transfer.merchant_id,
        balance=balance,
    )


async def issue(
    session: AsyncSession,
    settings: CurrencySettings,
    *,
    person_id: uuid.UUID,
    currency: str,
    purchased: int = 0,
    bonus: int = 0,
    actor: str,
    now: datetime | None = None,
) -> TransferOut:
    """Top up a resident: purchased and bonus value in separate lots, each with its currency's expiry.

    :raises InvalidInput: amounts not whole numbers, both zero, or an unknown currency.
    :raises NotFound: no such person. :raises LimitExceeded: above the currency's maximum balance.
    """
    now = now or utcnow()
    config = currency_of(settings, currency)
    whole("purchased", purchased, minimum=0)
    whole("bonus", bonus, minimum=0)
    total = whole("purchased + bonus", purchased + bonus)
    await person(session, person_id)
    lots = [
        NewLot("purchased", purchased, now + timedelta(days=config.purchased_expiry_days)),
        NewLot("bonus", bonus, now + timedelta(days=config.bonus_expiry_days)),
    ]
    wallet = await account(session, currency, "resident", person_id)
    issuer = await system_account(session, currency, "issuer")
    posted = await post(
        session,
        currency=currency,
        kind="issue",
        legs=[
            Leg(issuer, -total),
            Leg(wallet, total, lots=[lot for lot in lots if lot.amount], ceiling=config.max_balance),
        ],
        actor=actor,
        now=now,
        audit={"amount": total, "purchased": purchased, "bonus": bonus},
    )
    return transfer_out(posted.transfer, total, posted.balances[wallet.id])


async def award(
    session: AsyncSession,
    settings: CurrencySettings,
    *,
    person_id: uuid.UUID,
    amount: int,
    source: str,
    reference: str,
    currency: str | None = None,
    actor: str | None = None,
    now: datetime | None = None,
) -> AwardOut:
    """Pay value to a resident on behalf of another plugin, once per ``(source, reference)``.

    The same ``(source, reference)`` again, for the same person, amount and currency, returns the first award
    (``created=False``) and moves nothing; with anything different it is refused.

    :raises InvalidInput: a malformed source or reference, an amount below 1, an unknown currency, or a reused
        reference for a different award. :raises NotFound: no such person.
    :raises LimitExceeded: the award would take the resident above the maximum balance.
    """
    now = now or utcnow()
    currency = currency or settings.default_award_currency
    config = currency_of(settings, currency)
    whole("amount", amount)
    if not SOURCE_PATTERN.match(source):
        raise InvalidInput(f"source: must be a plugin name (lowercase letters, digits, '_'), got {source!r}")
    if not reference or len(reference) > MAX_REFERENCE or not reference.isprintable():
        raise InvalidInput(f"reference: must be 1 to {MAX_REFERENCE} printable characters")
    existing = await _awarded(session, source, reference, person_id, amount, currency)
    if existing is not None:
        return existing
    await person(session, person_id)
    wallet = await account(session, currency, "resident", person_id)
    issuer = await system_account(session, currency, "issuer")
    lot = NewLot("award", amount, now + timedelta(days=config.award_expiry_days))
    try:
        posted = await post(
            session,
            currency=currency,
            kind="award",
            legs=[Leg(issuer, -amount), Leg(wallet, amount, lots=[lot], ceiling=config.max_balance)],
            actor=actor or f"plugin:{source}",
            now=now,
            source=source,
            reference=reference,
            audit={"amount": amount, "source": source},
        )
    except DuplicateTransfer:  # the same award committed by someone else meanwhile
        raced = await _awarded(session, source, reference, person_id, amount, currency)
        assert raced is not None
        return raced
    return AwardOut(transfer_id=posted.transfer.id, currency=currency, amount=amount, created=True)


async def _awarded(
    session: AsyncSession, source: str, reference: str, person_id: uuid.UUID, amount: int, currency: str
) -> AwardOut | None:
    transfer = await session.scalar(
        select(Transfer).where(Transfer.source == source, Transfer.reference == reference)
    )
    if transfer is None:
        return None
    credited = await session.execute(
        select(LedgerAccount.owner_id, Entry.amount)
        .join(LedgerAccount, LedgerAccount.id == Entry.account_id)
        .where(Entry.transfer_id == transfer.id, LedgerAccount.kind == "resident")
    )
    owner, credit = credited.one()
    if (owner, credit, transfer.currency) != (person_id, amount, currency):
        raise InvalidInput(
            f"reference: {source}/{reference} was awarded already, to another person or for another amount"
        )
    return AwardOut(transfer_id=transfer.id, currency=currency, amount=amount, created=False)


async def redeem(
    session: AsyncSession,
    settings: CurrencySettings,
    *,
    merchant_id: uuid.UUID,
    currency: str,
    amount: int | None = None,
    actor: str,
    now: datetime | None = None,
) -> TransferOut:
    """Settle with a shop: take ``amount`` (all of it when ``None``) back to the issuer; the town pays it out.

    :raises NotFound: no such shop. :raises InsufficientBalance: the shop holds less.
    """
    now = now or utcnow()
    currency_of(settings, currency)
    merchant = await get_merchant(session, merchant_id)
    till = await find_account(session, currency, "merchant", merchant.id)
    if till is None:
        raise InsufficientBalance(f"the shop {merchant.name} holds no {currency}")
    issuer = await system_account(session, currency, "issuer")
    if amount is None:
        await lock_accounts(session, [till, issuer])
        amount = await session.scalar(select(LedgerAccount.balance).where(LedgerAccount.id == till.id)) or 0
        if amount == 0:
            raise InsufficientBalance(f"the shop {merchant.name} holds no {currency} to redeem")
    whole("amount", amount)
    posted = await post(
        session,
        currency=currency,
        kind="redeem",
        legs=[Leg(till, -amount), Leg(issuer, amount)],
        actor=actor,
        now=now,
        merchant_id=merchant.id,
        audit={"amount": amount, "merchant_id": str(merchant.id)},
    )
    return transfer_out(posted.transfer, amount, posted.balances[till.id])


async def reverse(
    session: AsyncSession, *, transfer_id: uuid.UUID, actor: str, now: datetime | None = None
) -> TransferOut:
    """Undo an issue, award, refund or redemption made in error, with a transfer of the opposite entries.

    Value a resident received can be taken back only while its lots are untouched.

    :raises NotFound: no such transfer. :raises InvalidInput: a kind that is not reversed this way.
    :raises Conflict: reversed already, or the value has been spent.
    """
    now = now or utcnow()
    original = await session.get(Transfer, (bound_municipality(session), transfer_id))
    if original is None:
        raise NotFound(f"no transfer {transfer_id}")
    if original.kind not in REVERSIBLE:
        hint = "; correct a payment with a refund" if original.kind == "payment" else ""
        raise InvalidInput(f"a transfer of kind {original.kind} cannot be reversed{hint}")
    if await session.scalar(select(Transfer.id).where(Transfer.reverses_id == original.id)) is not None:
        raise Conflict(f"transfer {original.id} has been reversed already")
    rows = (
        await session.execute(
            select(Entry, LedgerAccount)
            .join(LedgerAccount, LedgerAccount.id == Entry.account_id)
            .where(Entry.transfer_id == original.id)
            .order_by(Entry.line)
        )
    ).all()
    legs = []
    for entry, ledger_account in rows:
        draws = None
        if ledger_account.kind == "resident" and entry.amount > 0:
            lots = list(
                await session.scalars(
                    select(Lot).where(Lot.transfer_id == original.id, Lot.account_id == ledger_account.id)
                )
            )
            if any(lot.remaining != lot.amount for lot in lots):
                raise Conflict("part of this value has been spent or has expired; it cannot be reversed")
            draws = [(lot, lot.amount) for lot in lots]
        elif ledger_account.kind == "resident":
            raise InvalidInput("a transfer that took value from a resident cannot be reversed")
        legs.append(Leg(ledger_account, -entry.amount, draws=draws))
    amount = sum(entry.amount for entry, _ in rows if entry.amount > 0)
    try:
        posted = await post(
            session,
            currency=original.currency,
            kind="reversal",
            legs=legs,
            actor=actor,
            now=now,
            merchant_id=original.merchant_id,
            reverses_id=original.id,
            audit={"amount": amount, "reverses": str(original.id), "reversed_kind": original.kind},
        )
    except DuplicateTransfer as exc:
        raise Conflict(f"transfer {original.id} has been reversed already") from exc
    return transfer_out(posted.transfer, amount)
