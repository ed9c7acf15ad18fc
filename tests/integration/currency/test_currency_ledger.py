"""The ledger on SQLite and PostgreSQL: balanced, immutable transfers; balances that never go below zero; lots
spent oldest first; refunds capped by the payment; no movement between currencies."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import DBAPIError

from core.audit import AuditEvent
from core.db import utcnow
from core.exceptions import Conflict, InvalidInput
from core.platform import Platform
from core.tenancy import service
from plugins.currency import services
from plugins.currency.models import Entry, Lot, Transfer
from tests.integration.currency.helpers import (
    COIN,
    balance_of,
    issue,
    make_person,
    make_shop,
    pay,
    settings_of,
    tenant,
    verified,
)


async def test_issue_pay_refund_redeem_keep_every_balance_and_the_books_in_step(platform: Platform) -> None:
    await service.configure_plugin(
        platform,
        "miki",
        "currency",
        {"currencies": [{"code": COIN, "name": "みきコイン", "fee_rate_bp": 250}]},
    )
    resident, shop = await make_person(platform), await make_shop(platform)
    await issue(platform, resident, 10_000, 2_000)

    paid = await pay(platform, resident, shop, 1_000)
    assert (paid.amount, paid.fee, paid.balance) == (1_000, 25, 11_000)
    assert await balance_of(platform, "merchant", shop) == 975

    async with tenant(platform) as session:
        fee_account = await services.system_account(session, COIN, "fee")
        assert fee_account.balance == 25
        refund = await services.refund(session, merchant_id=shop, payment_id=paid.id, amount=400, actor="cli")
        assert refund.amount == 400
        with pytest.raises(InvalidInput, match="at most 600"):
            await services.refund(session, merchant_id=shop, payment_id=paid.id, amount=601, actor="cli")
    async with tenant(platform) as session:
        await services.refund(session, merchant_id=shop, payment_id=paid.id, amount=600, actor="cli")
    # Refunded in full: the payer has it all back, and exactly the fee taken has been given back.
    assert await balance_of(platform, "resident", resident) == 12_000
    assert await balance_of(platform, "merchant", shop) == 0
    async with tenant(platform) as session:
        assert (await services.system_account(session, COIN, "fee")).balance == 0
        with pytest.raises(InvalidInput, match="at most 0"):
            await services.refund(session, merchant_id=shop, payment_id=paid.id, amount=1, actor="cli")

    await pay(platform, resident, shop, 3_000)
    async with tenant(platform) as session:
        out = await services.redeem(
            session, settings_of(platform), merchant_id=shop, currency=COIN, actor="cli"
        )
    assert out.amount == 2_925 and out.balance == 0

    report = await verified(platform)
    assert report.ok, report.problem
    (totals,) = report.currencies
    assert (totals.issued, totals.redeemed, totals.expired, totals.held) == (12_000, 2_925, 0, 9_075)
    async with tenant(platform) as session:
        sums = (
            await session.execute(
                select(Entry.transfer_id, func.sum(Entry.amount)).group_by(Entry.transfer_id)
            )
        ).all()
        assert sums and all(total == 0 for _, total in sums)
        kinds = [t.kind for t in await session.scalars(select(Transfer).order_by(Transfer.created_at))]
        audited = set(
            await session.scalars(
                select(AuditEvent.target_id).where(AuditEvent.target_type == "currency_transfer")
            )
        )
        assert audited == {str(t.id) for t in await session.scalars(select(Transfer))}
    assert kinds == ["issue", "payment", "refund", "refund", "payment", "redeem"]


async def test_spending_takes_the_oldest_lot_first_and_never_expired_value(platform: Platform) -> None:
    resident, shop = await make_person(platform), await make_shop(platform)
    now = utcnow()
    await issue(platform, resident, 300, 0, now=now - timedelta(days=200))  # purchased: expired (180 days)
    await issue(platform, resident, 500, 200, now=now - timedelta(days=10))
    await issue(platform, resident, 400, 0, now=now - timedelta(days=1))

    with pytest.raises(services.InsufficientBalance, match="expired"):
        await pay(platform, resident, shop, 1_101, now=now)
    await pay(platform, resident, shop, 600, now=now)

    async with tenant(platform) as session:
        lots = list(await session.scalars(select(Lot).order_by(Lot.created_at, Lot.source.desc())))
    assert [(lot.source, lot.amount, lot.remaining) for lot in lots] == [
        ("purchased", 300, 300),  # expired: not spent, waiting for the expiry job
        ("purchased", 500, 100),
        ("bonus", 200, 0),  # same age and expiry as the purchased lot: bonus goes first
        ("purchased", 400, 400),
    ]
    assert (await verified(platform)).ok


async def test_a_balance_never_goes_below_zero_and_a_refused_payment_changes_nothing(
    platform: Platform,
) -> None:
    resident, shop = await make_person(platform), await make_shop(platform)
    await issue(platform, resident, 500)
    with pytest.raises(services.InsufficientBalance):
        await pay(platform, resident, shop, 501)
    stranger = await make_person(platform)
    with pytest.raises(services.InsufficientBalance, match="no MIKI"):
        await pay(platform, stranger, shop, 1)
    assert await balance_of(platform, "resident", resident) == 500
    async with tenant(platform) as session:
        assert await session.scalar(select(func.count()).select_from(Transfer)) == 1
    # The database refuses a negative holder balance by itself too.
    with pytest.raises(DBAPIError):
        async with tenant(platform) as session:
            account = await services.find_account(session, COIN, "resident", resident)
            assert account is not None
            await session.execute(
                text("UPDATE currency_accounts SET balance = -1 WHERE id = :id"),
                {"id": account.id if session.get_bind().dialect.name == "postgresql" else account.id.hex},
            )


async def test_limits_per_payment_per_day_and_on_the_balance(platform: Platform) -> None:
    await service.configure_plugin(
        platform,
        "miki",
        "currency",
        {
            "currencies": [
                {
                    "code": COIN,
                    "name": "みきコイン",
                    "max_payment": 1_000,
                    "max_daily": 1_500,
                    "max_balance": 5_000,
                }
            ]
        },
    )
    resident, shop = await make_person(platform), await make_shop(platform)
    with pytest.raises(services.LimitExceeded, match="max_balance"):
        await issue(platform, resident, 5_001)
    await issue(platform, resident, 5_000)
    with pytest.raises(services.LimitExceeded, match="max_balance"):
        await issue(platform, resident, 0, 1)
    with pytest.raises(services.LimitExceeded, match="max_payment"):
        await pay(platform, resident, shop, 1_001)
    await pay(platform, resident, shop, 1_000)
    with pytest.raises(services.LimitExceeded, match="500 more"):
        await pay(platform, resident, shop, 600)
    await pay(platform, resident, shop, 500)
    assert await balance_of(platform, "resident", resident) == 3_500


async def test_transfers_between_currencies_are_refused(platform: Platform) -> None:
    await service.configure_plugin(
        platform,
        "miki",
        "currency",
        {"currencies": [{"code": COIN, "name": "みきコイン"}, {"code": "MIKIPT", "name": "みきポイント"}]},
    )
    resident, shop = await make_person(platform), await make_shop(platform)
    await issue(platform, resident, 1_000)
    async with tenant(platform) as session:
        wallet = await services.find_account(session, COIN, "resident", resident)
        points_issuer = await services.system_account(session, "MIKIPT", "issuer")
        assert wallet is not None
        with pytest.raises(services.CurrencyMismatch, match="between currencies"):
            await services.post(
                session,
                currency=COIN,
                kind="payment",
                legs=[services.Leg(wallet, -10), services.Leg(points_issuer, 10)],
                actor="cli",
                now=utcnow(),
            )
    # A code for a currency the town does not run is refused with the currencies it does.
    with pytest.raises(InvalidInput, match="runs MIKI, MIKIPT, not 'YEN'"):
        await pay(
            platform,
            resident,
            shop,
            10,
            code=services.make_code(
                services.code_key(platform.settings), municipality="miki", merchant_id=shop, currency="YEN"
            ),
        )
    assert await balance_of(platform, "resident", resident) == 1_000
    # The database holds the line too: an entry must be in its account's currency.
    with pytest.raises(DBAPIError):
        async with tenant(platform) as session:
            transfer = Transfer(
                id=uuid.uuid4(), currency="MIKIPT", kind="award", actor="cli", created_at=utcnow()
            )
            session.add(transfer)
            await session.flush()
            session.add(
                Entry(
                    transfer_id=transfer.id,
                    line=1,
                    account_id=wallet.id,
                    currency="MIKIPT",
                    amount=5,
                    created_at=utcnow(),
                )
            )
            await session.flush()


async def test_transfers_and_entries_are_never_changed_in_place(platform: Platform) -> None:
    resident = await make_person(platform)
    out = await issue(platform, resident, 100)
    for statement in (
        update(Transfer).where(Transfer.id == out.id).values(kind="award"),
        update(Entry).where(Entry.transfer_id == out.id).values(amount=1),
    ):
        with pytest.raises(DBAPIError, match="never changed"):
            async with tenant(platform) as session:
                await session.execute(statement)
    with pytest.raises(DBAPIError, match="never changed"):
        async with tenant(platform) as session:
            await session.execute(text("DELETE FROM currency_entries"))
    assert (await verified(platform)).ok


async def test_corrections_are_reversing_transfers(platform: Platform) -> None:
    resident, shop = await make_person(platform), await make_shop(platform)
    wrong = await issue(platform, resident, 700)
    spent = await issue(platform, resident, 100)
    async with tenant(platform) as session:
        reversal = await services.reverse(session, transfer_id=wrong.id, actor="cli")
    assert reversal.kind == "reversal" and reversal.amount == 700
    assert await balance_of(platform, "resident", resident) == 100
    async with tenant(platform) as session:
        with pytest.raises(Conflict, match="reversed already"):
            await services.reverse(session, transfer_id=wrong.id, actor="cli")
    await pay(platform, resident, shop, 50)
    async with tenant(platform) as session:
        with pytest.raises(Conflict, match="spent"):
            await services.reverse(session, transfer_id=spent.id, actor="cli")
    async with tenant(platform) as session:
        payment = await session.scalar(select(Transfer.id).where(Transfer.kind == "payment"))
        assert payment is not None
        with pytest.raises(InvalidInput, match="refund"):
            await services.reverse(session, transfer_id=payment, actor="cli")
    report = await verified(platform)
    assert report.ok and report.currencies[0].issued == 800 and report.currencies[0].redeemed == 700


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_postgres_refuses_to_commit_a_transfer_that_does_not_balance(platform: Platform) -> None:
    resident = await make_person(platform)
    await issue(platform, resident, 100)
    with pytest.raises(DBAPIError, match="does not balance"):
        async with tenant(platform) as session:
            wallet = await services.find_account(session, COIN, "resident", resident)
            assert wallet is not None
            transfer = Transfer(
                id=uuid.uuid4(), currency=COIN, kind="award", actor="cli", created_at=utcnow()
            )
            session.add(transfer)
            await session.flush()
            session.add(
                Entry(
                    transfer_id=transfer.id,
                    line=1,
                    account_id=wallet.id,
                    currency=COIN,
                    amount=5,
                    created_at=utcnow(),
                )
            )
    assert (await verified(platform)).ok
