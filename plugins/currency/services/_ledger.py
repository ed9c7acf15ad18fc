"""Posting a transfer: the one place where balances, lots and entries change.

Every movement of value goes through :func:`post`, in the caller's transaction:

1. The transfer row is inserted first; a second transfer with the same ``(source, reference)`` or reversing the
   same transfer fails on a unique constraint (inside a savepoint, so the caller's transaction survives and can
   look at the one that won).
2. The accounts taking part are locked in one fixed order (holders before the municipality's own accounts, then
   by id), so two transfers sharing accounts never wait for each other in a cycle. A caller that must check
   something first (a daily limit, what is left to refund) calls :func:`lock_accounts` itself, checks, then posts:
   the lock is held to the end of the transaction, and taking it again is free.
3. Balances change by conditional UPDATE: a debit only ``WHERE balance >= amount``, a credit with a ceiling only
   ``WHERE balance + amount <= ceiling``; a CHECK constraint backs both. A resident's debit draws the oldest usable
   lots first; a resident's credit lands in new lots.
4. Entries (summing to zero, checked here and again by the database at commit on PostgreSQL) and lot draws are
   inserted; the movement is audited.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import case, event, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from core.audit import record
from core.exceptions import Conflict, InvalidInput
from plugins.currency.models import SYSTEM_KINDS, Entry, LedgerAccount, Lot, LotDraw, Transfer
from plugins.currency.services._errors import CurrencyMismatch, InsufficientBalance, LimitExceeded


@dataclass(frozen=True)
class NewLot:
    """Where a resident's credit goes: value of one source with one expiry."""

    source: str
    amount: int
    expires_at: datetime


@dataclass(frozen=True)
class Leg:
    """One account's share of a transfer: ``amount`` added to its balance (negative: taken from it)."""

    account: LedgerAccount
    amount: int
    lots: Sequence[NewLot] = ()
    """A resident's credit: the lots it creates (they sum to ``amount``)."""
    draws: Sequence[tuple[Lot, int]] | None = None
    """A resident's debit from given lots (expiry, reversal); ``None``: the oldest usable lots first."""
    ceiling: int | None = None
    """A credit that would take the balance above this is refused (a resident's maximum balance)."""


@dataclass
class Posted:
    transfer: Transfer
    balances: dict[uuid.UUID, int] = field(default_factory=dict)
    """Each account's balance after the transfer."""


class DuplicateTransfer(Conflict):
    """A transfer with this ``(source, reference)``, or reversing this transfer, exists already."""


def _check_legs(currency: str, legs: Sequence[Leg]) -> None:
    if len(legs) < 2:
        raise InvalidInput("a transfer needs at least two entries")
    ids = [leg.account.id for leg in legs]
    if len(set(ids)) != len(ids):
        raise InvalidInput("a transfer cannot name one account twice")
    for leg in legs:
        if leg.account.currency != currency:
            raise CurrencyMismatch(
                f"cannot move {currency} into or out of a {leg.account.currency} account: "
                "transfers between currencies are refused"
            )
        if not isinstance(leg.amount, int) or isinstance(leg.amount, bool) or leg.amount == 0:
            raise InvalidInput(f"entry amounts must be non-zero integers, got {leg.amount!r}")
        if leg.account.kind == "resident" and leg.amount > 0:
            if sum(lot.amount for lot in leg.lots) != leg.amount or any(lot.amount <= 0 for lot in leg.lots):
                raise InvalidInput("a resident's credit must be split into lots that sum to it")
    if sum(leg.amount for leg in legs) != 0:
        raise InvalidInput(f"a transfer's entries must sum to zero, got {sum(leg.amount for leg in legs)}")


async def post(
    session: AsyncSession,
    *,
    currency: str,
    kind: str,
    legs: Sequence[Leg],
    actor: str,
    now: datetime,
    merchant_id: uuid.UUID | None = None,
    original_id: uuid.UUID | None = None,
    reverses_id: uuid.UUID | None = None,
    source: str | None = None,
    reference: str | None = None,
    audit: dict[str, Any] | None = None,
) -> Posted:
    """Move value between accounts of one currency, atomically, in the caller's transaction.

    :raises CurrencyMismatch: an account is of another currency.
    :raises InsufficientBalance: a holder's balance (or its usable, unexpired lots) does not cover its debit.
    :raises LimitExceeded: a credit would go above the account's ceiling.
    :raises DuplicateTransfer: the ``(source, reference)`` or the reversed transfer is taken.
    :raises InvalidInput: the legs do not make a balanced transfer.
    """
    _check_legs(currency, legs)
    transfer = Transfer(
        id=uuid.uuid4(),
        currency=currency,
        kind=kind,
        created_at=now,
        actor=actor,
        merchant_id=merchant_id,
        original_id=original_id,
        reverses_id=reverses_id,
        source=source,
        reference=reference,
    )
    if source is not None or reverses_id is not None:
        try:
            async with session.begin_nested():
                session.add(transfer)
                await session.flush()
        except IntegrityError as exc:
            raise DuplicateTransfer(
                "this movement has been made already"
                if reverses_id is None
                else "this transfer is reversed already"
            ) from exc
    else:
        session.add(transfer)
        await session.flush()

    await lock_accounts(session, [leg.account for leg in legs])

    posted = Posted(transfer=transfer)
    draws: list[LotDraw] = []
    for leg in sorted(legs, key=_lock_order):
        posted.balances[leg.account.id] = await _apply(session, leg)
        if leg.account.kind == "resident":
            if leg.amount < 0:
                draws += await _draw(session, transfer, leg, now)
            else:
                for new in leg.lots:
                    session.add(
                        Lot(
                            id=uuid.uuid4(),
                            account_id=leg.account.id,
                            transfer_id=transfer.id,
                            source=new.source,
                            amount=new.amount,
                            remaining=new.amount,
                            expires_at=new.expires_at,
                            created_at=now,
                        )
                    )
    session.add_all(
        Entry(
            transfer_id=transfer.id,
            line=line,
            account_id=leg.account.id,
            currency=currency,
            amount=leg.amount,
            created_at=now,
        )
        for line, leg in enumerate(legs, start=1)
    )
    session.add_all(draws)
    record(
        session,
        actor=actor,
        action=f"currency.{kind}",
        target_type="currency_transfer",
        target_id=transfer.id,
        payload={"currency": currency, **(audit or {})},
    )
    await session.flush()
    return posted


_LOCKED = "currency.locked_accounts"
"""``session.info`` key: accounts locked in the current transaction (a row lock lasts until it ends)."""


@event.listens_for(Session, "after_transaction_end")
def _forget_locks(session: Session, transaction: Any) -> None:
    """The transaction or a savepoint ending may have released locks: lock again next time. (A flush's inner
    subtransaction ending releases nothing.)"""
    if transaction.nested or transaction.parent is None:
        session.info.pop(_LOCKED, None)


def _lock_order(leg: Leg) -> tuple[int, str]:
    return (1 if leg.account.kind in SYSTEM_KINDS else 0, str(leg.account.id))


async def lock_accounts(session: AsyncSession, accounts: Sequence[LedgerAccount]) -> None:
    """Lock accounts until the transaction ends, in the one fixed order (PostgreSQL locks the rows as it reads
    the sorted result). On SQLite the transaction holds the database's write lock already."""
    if session.get_bind().dialect.name != "postgresql":
        return
    held = session.info.setdefault(_LOCKED, set())
    wanted = {a.id for a in accounts}
    if wanted <= held:
        return
    held |= wanted
    system_last = case((LedgerAccount.kind.in_(SYSTEM_KINDS), 1), else_=0)
    await session.execute(
        select(LedgerAccount.id)
        .where(LedgerAccount.id.in_([a.id for a in accounts]))
        .order_by(system_last, LedgerAccount.id)
        .with_for_update()
    )


async def _apply(session: AsyncSession, leg: Leg) -> int:
    account = leg.account
    statement = update(LedgerAccount).where(LedgerAccount.id == account.id)
    if leg.amount < 0 and account.kind != "issuer":
        statement = statement.where(LedgerAccount.balance >= -leg.amount)
    if leg.amount > 0 and leg.ceiling is not None:
        statement = statement.where(LedgerAccount.balance + leg.amount <= leg.ceiling)
    result = await session.execute(
        statement.values(balance=LedgerAccount.balance + leg.amount)
        .returning(LedgerAccount.balance)
        .execution_options(synchronize_session=False)
    )
    balance = result.scalar_one_or_none()
    if balance is None:
        current = await session.scalar(select(LedgerAccount.balance).where(LedgerAccount.id == account.id))
        if leg.amount < 0:
            raise InsufficientBalance(
                f"the {account.kind} account holds {current} {account.currency}, {-leg.amount} needed",
                balance=current,
            )
        raise LimitExceeded(
            f"max_balance: the balance would be {(current or 0) + leg.amount} {account.currency}, "
            f"above the limit of {leg.ceiling}"
        )
    set_committed_value(account, "balance", balance)
    return balance


async def usable_lots(session: AsyncSession, account_id: uuid.UUID, now: datetime) -> list[Lot]:
    """A resident's lots that can still be spent, oldest first; of one credit's lots, the one expiring first, then
    bonus before purchased value."""
    return list(
        await session.scalars(
            select(Lot)
            .where(Lot.account_id == account_id, Lot.remaining > 0, Lot.expires_at > now)
            .order_by(Lot.created_at, Lot.expires_at, Lot.source, Lot.id)
        )
    )


async def _draw(session: AsyncSession, transfer: Transfer, leg: Leg, now: datetime) -> list[LotDraw]:
    needed = -leg.amount
    if leg.draws is not None:
        plan = list(leg.draws)
    else:
        plan = []
        for lot in await usable_lots(session, leg.account.id, now):
            take = min(lot.remaining, needed - sum(amount for _, amount in plan))
            if take <= 0:
                break
            plan.append((lot, take))
    if sum(amount for _, amount in plan) != needed:
        usable = sum(amount for _, amount in plan)
        raise InsufficientBalance(
            f"only {usable} {leg.account.currency} can be spent, {needed} needed "
            "(the rest of the balance has expired and is being moved to the expiry account)",
            balance=usable,
        )
    draws = []
    for lot, amount in plan:
        result = await session.execute(
            update(Lot)
            .where(Lot.id == lot.id, Lot.remaining >= amount)
            .values(remaining=Lot.remaining - amount)
            .returning(Lot.remaining)
            .execution_options(synchronize_session=False)
        )
        remaining = result.scalar_one_or_none()
        if remaining is None:
            raise InsufficientBalance(f"a lot of {leg.account.currency} holds less than {amount}")
        set_committed_value(lot, "remaining", remaining)
        draws.append(LotDraw(transfer_id=transfer.id, lot_id=lot.id, amount=amount))
    return draws
