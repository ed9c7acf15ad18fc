"""Paying a shop with a scanned code, the codes themselves, and refunds (never more than was paid)."""

from __future__ import annotations

import uuid
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.db import utcnow
from core.exceptions import Conflict, InvalidInput, NotFound
from plugins.currency.config import CurrencyConfig, CurrencySettings
from plugins.currency.models import Entry, LedgerAccount, Lot, LotDraw, Transfer
from plugins.currency.schemas import PaymentOut, SaleOut, TransferOut
from plugins.currency.services._accounts import account, currency_of, find_account, system_account
from plugins.currency.services._codes import make_code, read_code
from plugins.currency.services._errors import InsufficientBalance, LimitExceeded
from plugins.currency.services._issuing import transfer_out, whole
from plugins.currency.services._ledger import DuplicateTransfer, Leg, NewLot, lock_accounts, post
from plugins.currency.services._merchants import open_merchant

SALE_SOURCE = "currency.sale"
"""``Transfer.source`` of a payment of a per-sale code; its reference is the sale id, so a sale is paid once."""


def start_of_day(now: datetime, tz: ZoneInfo) -> datetime:
    """Midnight of ``now``'s calendar day in the municipality's time zone."""
    return datetime.combine(now.astimezone(tz).date(), time(0), tz)


async def paid_today(session: AsyncSession, payer: LedgerAccount, now: datetime, tz: ZoneInfo) -> int:
    """What the payer has paid since midnight in the municipality's time zone."""
    total = await session.scalar(
        select(func.coalesce(func.sum(-Entry.amount), 0))
        .select_from(Entry)
        .join(Transfer, Transfer.id == Entry.transfer_id)
        .where(
            Entry.account_id == payer.id,
            Transfer.kind == "payment",
            Entry.created_at >= start_of_day(now, tz),
        )
    )
    return int(total or 0)


def fee_for(config: CurrencyConfig, amount: int) -> int:
    return amount * config.fee_rate_bp // 10_000


async def sale_code(
    session: AsyncSession,
    settings: CurrencySettings,
    *,
    key: bytes,
    municipality: str,
    merchant_id: uuid.UUID,
    amount: int,
    currency: str | None = None,
    ttl_seconds: int | None = None,
    now: datetime | None = None,
) -> SaleOut:
    """A signed per-sale code: amount and expiry fixed, payable once. Nothing is stored until it is paid.

    :raises InvalidInput: bad amount or lifetime, unknown currency. :raises NotFound, Conflict: no such or closed shop.
    """
    now = now or utcnow()
    config = currency_of(settings, currency or settings.currencies[0].code)
    whole("amount", amount)
    if amount > config.max_payment:
        raise LimitExceeded(f"max_payment: a payment may be at most {config.max_payment} {config.code}")
    ttl = config.sale_ttl_seconds if ttl_seconds is None else ttl_seconds
    if not 30 <= ttl <= 3600:
        raise InvalidInput(f"ttl_seconds: must be between 30 and 3600, got {ttl}")
    merchant = await open_merchant(session, merchant_id)
    sale_id = uuid.uuid4()
    expires_at = (now + timedelta(seconds=ttl)).replace(microsecond=0)
    code = make_code(
        key,
        municipality=municipality,
        merchant_id=merchant.id,
        currency=config.code,
        amount=amount,
        expires_at=expires_at,
        sale_id=sale_id,
    )
    return SaleOut(
        sale_id=sale_id,
        merchant_id=merchant.id,
        currency=config.code,
        amount=amount,
        expires_at=expires_at,
        code=code,
    )


async def pay(
    session: AsyncSession,
    settings: CurrencySettings,
    *,
    key: bytes,
    municipality: str,
    tz: ZoneInfo,
    payer_id: uuid.UUID,
    code: str,
    amount: int | None,
    actor: str,
    now: datetime | None = None,
) -> PaymentOut:
    """Pay a shop from the payer's wallet with the code it shows.

    :raises InvalidInput: a bad, altered, foreign or expired code; a missing or wrong amount.
    :raises LimitExceeded: above the payment or daily limit. :raises InsufficientBalance: not enough usable value.
    :raises NotFound: no such shop. :raises Conflict: the shop is closed, or the sale has been paid already.
    """
    now = now or utcnow()
    scanned = read_code(key, code, municipality=municipality, now=now)
    config = currency_of(settings, scanned.currency)
    if scanned.amount is not None:
        if amount is not None and amount != scanned.amount:
            raise InvalidInput(
                f"amount: this sale is for exactly {scanned.amount} {config.code}, not {amount}"
            )
        amount = scanned.amount
    elif amount is None:
        raise InvalidInput("amount: required when paying with a shop's fixed code")
    whole("amount", amount)
    if amount > config.max_payment:
        raise LimitExceeded(
            f"max_payment: a payment may be at most {config.max_payment} {config.code}, not {amount}"
        )
    merchant = await open_merchant(session, scanned.merchant_id)
    wallet = await find_account(session, config.code, "resident", payer_id)
    if wallet is None:
        raise InsufficientBalance(f"you hold no {config.code}", balance=0)
    till = await account(session, config.code, "merchant", merchant.id)
    fee = fee_for(config, amount)
    legs = [Leg(wallet, -amount), Leg(till, amount - fee)]
    if fee:
        legs.append(Leg(await system_account(session, config.code, "fee"), fee))
    await lock_accounts(session, [leg.account for leg in legs])
    spent = await paid_today(session, wallet, now, tz)
    if spent + amount > config.max_daily:
        raise LimitExceeded(
            f"max_daily: {spent} {config.code} paid today; at most {config.max_daily} a day, "
            f"so {max(config.max_daily - spent, 0)} more can be paid today"
        )
    try:
        posted = await post(
            session,
            currency=config.code,
            kind="payment",
            legs=legs,
            actor=actor,
            now=now,
            merchant_id=merchant.id,
            source=SALE_SOURCE if scanned.sale_id else None,
            reference=scanned.sale_id.hex if scanned.sale_id else None,
            audit={"amount": amount, "fee": fee, "merchant_id": str(merchant.id)},
        )
    except DuplicateTransfer as exc:
        raise Conflict("this sale has been paid already") from exc
    return PaymentOut(
        id=posted.transfer.id,
        currency=config.code,
        amount=amount,
        fee=fee,
        merchant_id=merchant.id,
        merchant_name=merchant.name,
        balance=posted.balances[wallet.id],
        created_at=now,
    )


async def refunded_so_far(session: AsyncSession, payment: Transfer) -> int:
    """What has been given back of a payment: its refunds, less any of them reversed since."""
    reversed_ids = select(Transfer.reverses_id).where(Transfer.reverses_id.is_not(None))
    total = await session.scalar(
        select(func.coalesce(func.sum(Entry.amount), 0))
        .select_from(Entry)
        .join(Transfer, Transfer.id == Entry.transfer_id)
        .join(LedgerAccount, LedgerAccount.id == Entry.account_id)
        .where(
            Transfer.original_id == payment.id,
            Transfer.kind == "refund",
            Transfer.id.not_in(reversed_ids),
            LedgerAccount.kind == "resident",
        )
    )
    return int(total or 0)


async def refund(
    session: AsyncSession,
    *,
    merchant_id: uuid.UUID,
    payment_id: uuid.UUID,
    amount: int,
    actor: str,
    now: datetime | None = None,
) -> TransferOut:
    """Give back (part of) a payment from the shop to the payer. The fee is given back in proportion, so a full
    refund returns exactly the fee taken.

    The refunded value lands in a new lot that expires when the latest lot the payment drew from does.

    :raises NotFound: no such payment to this shop. :raises InvalidInput: more than is left to refund.
    :raises InsufficientBalance: the shop no longer holds that much (it has been paid out).
    """
    now = now or utcnow()
    whole("amount", amount)
    payment = await session.scalar(
        select(Transfer).where(
            Transfer.id == payment_id, Transfer.kind == "payment", Transfer.merchant_id == merchant_id
        )
    )
    if payment is None:
        raise NotFound(f"no payment {payment_id} to this shop")
    rows = (
        await session.execute(
            select(Entry.amount, LedgerAccount)
            .join(LedgerAccount, LedgerAccount.id == Entry.account_id)
            .where(Entry.transfer_id == payment.id)
        )
    ).all()
    by_kind = {ledger_account.kind: (ledger_account, entry_amount) for entry_amount, ledger_account in rows}
    wallet, paid = by_kind["resident"][0], -by_kind["resident"][1]
    till = by_kind["merchant"][0]
    fee_account, fee_taken = by_kind.get("fee", (None, 0))
    await lock_accounts(session, [a for a, _ in by_kind.values()])
    before = await refunded_so_far(session, payment)
    if before + amount > paid:
        raise InvalidInput(
            f"amount: at most {paid - before} {payment.currency} of this payment can still be refunded"
        )
    fee_back = fee_taken * (before + amount) // paid - fee_taken * before // paid
    expires_at = await session.scalar(
        select(func.max(Lot.expires_at))
        .select_from(Lot)
        .join(LotDraw, LotDraw.lot_id == Lot.id)
        .where(LotDraw.transfer_id == payment.id)
    )
    legs = [Leg(wallet, amount, lots=[NewLot("refund", amount, expires_at or now)])]
    if amount - fee_back:
        legs.append(Leg(till, -(amount - fee_back)))
    if fee_back and fee_account is not None:
        legs.append(Leg(fee_account, -fee_back))
    posted = await post(
        session,
        currency=payment.currency,
        kind="refund",
        legs=legs,
        actor=actor,
        now=now,
        merchant_id=payment.merchant_id,
        original_id=payment.id,
        audit={"amount": amount, "payment_id": str(payment.id), "merchant_id": str(merchant_id)},
    )
    return transfer_out(posted.transfer, amount, posted.balances.get(till.id))
