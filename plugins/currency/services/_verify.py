"""``verify``: recompute the ledger of one municipality from its entries and compare.

Checks, in order, stopping at the first problem:

1. every transfer has at least two entries and they sum to zero;
2. every account's stored balance equals the sum of its entries, and no holder is below zero;
3. per currency, issued − redeemed − expired equals the sum of the holders' stored balances (residents, shops,
   the fee account);
4. every lot's remainder equals its amount less what was drawn from it, and every resident's balance equals the
   remainders of their lots.
"""

from __future__ import annotations

import msgspec
from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from plugins.currency.models import HOLDER_KINDS, Entry, LedgerAccount, Lot, LotDraw, Transfer


class CurrencyTotals(msgspec.Struct, kw_only=True, frozen=True):
    currency: str
    issued: int
    redeemed: int
    expired: int
    held: int


class Report(msgspec.Struct, kw_only=True, frozen=True):
    ok: bool
    problem: str | None = None
    """The first problem found, in words."""
    transfers: int = 0
    accounts: int = 0
    currencies: list[CurrencyTotals] = msgspec.field(default_factory=list)


async def verify(session: AsyncSession) -> Report:
    """Check the ledger of the session's municipality (read only)."""
    transfers = int(await session.scalar(select(func.count()).select_from(Transfer)) or 0)
    accounts = int(await session.scalar(select(func.count()).select_from(LedgerAccount)) or 0)

    def failed(problem: str) -> Report:
        return Report(ok=False, problem=problem, transfers=transfers, accounts=accounts)

    lines = func.count(Entry.line)
    unbalanced = (
        await session.execute(
            select(Transfer.id, lines, func.coalesce(func.sum(Entry.amount), 0))
            .select_from(Transfer)
            .outerjoin(Entry, Entry.transfer_id == Transfer.id)
            .group_by(Transfer.id)
            .having((lines < 2) | (func.coalesce(func.sum(Entry.amount), 0) != 0))
            .order_by(Transfer.id)
            .limit(1)
        )
    ).first()
    if unbalanced is not None:
        transfer_id, count, total = unbalanced
        return failed(f"transfer {transfer_id} does not balance: {count} entries summing to {total}")

    entry_sum = func.coalesce(func.sum(Entry.amount), 0)
    drifted = (
        await session.execute(
            select(
                LedgerAccount.id, LedgerAccount.kind, LedgerAccount.currency, LedgerAccount.balance, entry_sum
            )
            .select_from(LedgerAccount)
            .outerjoin(Entry, Entry.account_id == LedgerAccount.id)
            .group_by(LedgerAccount.id, LedgerAccount.kind, LedgerAccount.currency, LedgerAccount.balance)
            .having(LedgerAccount.balance != entry_sum)
            .order_by(LedgerAccount.id)
            .limit(1)
        )
    ).first()
    if drifted is not None:
        account_id, kind, currency, stored, computed = drifted
        return failed(
            f"{kind} account {account_id} ({currency}) stores a balance of {stored}, its entries sum to {computed}"
        )
    negative = await session.scalar(
        select(LedgerAccount.id)
        .where(LedgerAccount.kind.in_(HOLDER_KINDS), LedgerAccount.balance < 0)
        .limit(1)
    )
    if negative is not None:
        return failed(f"account {negative} is below zero")

    totals = await _currency_totals(session)
    for row in totals:
        if row.issued - row.redeemed - row.expired != row.held:
            return failed(
                f"{row.currency}: issued {row.issued} − redeemed {row.redeemed} − expired {row.expired} = "
                f"{row.issued - row.redeemed - row.expired}, but holders hold {row.held}"
            )

    drawn = (
        select(LotDraw.lot_id, func.sum(LotDraw.amount).label("drawn")).group_by(LotDraw.lot_id).subquery()
    )
    lot = (
        await session.execute(
            select(Lot.id, Lot.amount, Lot.remaining, func.coalesce(drawn.c.drawn, 0))
            .outerjoin(drawn, drawn.c.lot_id == Lot.id)
            .where(Lot.amount - func.coalesce(drawn.c.drawn, 0) != Lot.remaining)
            .limit(1)
        )
    ).first()
    if lot is not None:
        lot_id, amount, remaining, taken = lot
        return failed(f"lot {lot_id} of {amount} had {taken} drawn from it but keeps {remaining}")
    in_lots = func.coalesce(func.sum(Lot.remaining), 0)
    wallet = (
        await session.execute(
            select(LedgerAccount.id, LedgerAccount.balance, in_lots)
            .select_from(LedgerAccount)
            .outerjoin(Lot, Lot.account_id == LedgerAccount.id)
            .where(LedgerAccount.kind == "resident")
            .group_by(LedgerAccount.id, LedgerAccount.balance)
            .having(LedgerAccount.balance != in_lots)
            .limit(1)
        )
    ).first()
    if wallet is not None:
        account_id, balance, held = wallet
        return failed(f"resident account {account_id} holds {balance} but its lots hold {held}")
    return Report(ok=True, transfers=transfers, accounts=accounts, currencies=totals)


async def _currency_totals(session: AsyncSession) -> list[CurrencyTotals]:
    """Per currency: issued and redeemed (the issuer's debits and credits), expired, and the holders' balances."""
    issuer = LedgerAccount.kind == "issuer"
    issued = func.coalesce(func.sum(case((issuer & (Entry.amount < 0), -Entry.amount), else_=0)), 0)
    redeemed = func.coalesce(func.sum(case((issuer & (Entry.amount > 0), Entry.amount), else_=0)), 0)
    expired = func.coalesce(func.sum(case((LedgerAccount.kind == "expiry", Entry.amount), else_=0)), 0)
    flows = {
        currency: (int(i), int(r), int(e))
        for currency, i, r, e in await session.execute(
            select(LedgerAccount.currency, issued, redeemed, expired)
            .select_from(Entry)
            .join(LedgerAccount, LedgerAccount.id == Entry.account_id)
            .group_by(LedgerAccount.currency)
        )
    }
    held = {
        currency: int(total)
        for currency, total in await session.execute(
            select(LedgerAccount.currency, func.coalesce(func.sum(LedgerAccount.balance), 0))
            .where(LedgerAccount.kind.in_(HOLDER_KINDS))
            .group_by(LedgerAccount.currency)
        )
    }
    return [
        CurrencyTotals(
            currency=currency,
            issued=flows.get(currency, (0, 0, 0))[0],
            redeemed=flows.get(currency, (0, 0, 0))[1],
            expired=flows.get(currency, (0, 0, 0))[2],
            held=held.get(currency, 0),
        )
        for currency in sorted(set(flows) | set(held))
    ]
