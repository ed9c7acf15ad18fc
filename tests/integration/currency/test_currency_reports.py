"""Settlement statements per shop and period, and the outstanding balance at the legal reference dates, read
from the entries so that any past period can be reported."""

from __future__ import annotations

from datetime import UTC, date, datetime

import httpx
import pytest

from core.exceptions import InvalidInput
from core.platform import Platform
from core.tenancy import service
from plugins.currency import services
from tests.integration.currency.helpers import (
    COIN,
    issue,
    make_person,
    make_shop,
    pay,
    settings_of,
    signed_in,
    tenant,
    tz_of,
)


def at(day: str, hour: int = 12) -> datetime:
    return datetime.fromisoformat(f"{day}T{hour:02d}:00:00").replace(tzinfo=UTC)


async def test_statements_and_outstanding_balances(platform: Platform, client: httpx.AsyncClient) -> None:
    await service.configure_plugin(
        platform,
        "miki",
        "currency",
        {
            "currencies": [
                {"code": COIN, "name": "みきコイン", "fee_rate_bp": 100, "purchased_expiry_days": 3650}
            ]
        },
    )
    resident, shop, other = (
        await make_person(platform),
        await make_shop(platform),
        await make_shop(platform, name="本屋"),
    )
    await issue(platform, resident, 20_000, now=at("2025-03-01"))
    first = await pay(platform, resident, shop, 5_000, now=at("2025-03-20"))
    await pay(platform, resident, other, 1_000, now=at("2025-03-31", 14))  # 23:00 in Miki: still March 31
    await pay(platform, resident, shop, 2_000, now=at("2025-03-31", 15))  # April 1 in Miki
    async with tenant(platform) as session:
        await services.refund(
            session, merchant_id=shop, payment_id=first.id, amount=1_000, actor="cli", now=at("2025-04-02")
        )
        await services.redeem(
            session,
            settings_of(platform),
            merchant_id=shop,
            currency=COIN,
            amount=3_000,
            actor="cli",
            now=at("2025-04-10"),
        )

    async with tenant(platform) as session:
        march = await services.statement(
            session,
            settings_of(platform),
            tz_of(platform),
            merchant_id=shop,
            currency=COIN,
            start=date(2025, 3, 1),
            end=date(2025, 3, 31),
        )
        april = await services.statement(
            session,
            settings_of(platform),
            tz_of(platform),
            merchant_id=shop,
            currency=COIN,
            start=date(2025, 4, 1),
            end=date(2025, 4, 30),
        )
        everyone = await services.statements(
            session,
            settings_of(platform),
            tz_of(platform),
            currency=COIN,
            start=date(2025, 3, 1),
            end=date(2025, 4, 30),
        )
    assert (march.payments, march.gross, march.fees, march.closing_balance) == (1, 5_000, 50, 4_950)
    assert (april.opening_balance, april.payments, april.gross, april.fees) == (4_950, 1, 2_000, 20 - 10)
    assert (april.refunds, april.refunded, april.redeemed) == (1, 1_000, 3_000)
    assert april.closing_balance == 4_950 + 1_980 - 990 - 3_000
    assert {s.merchant_name: s.closing_balance for s in everyone} == {
        "三木うどん": april.closing_balance,
        "本屋": 990,
    }

    async with tenant(platform) as session:
        march_end = await services.outstanding(
            session, settings_of(platform), tz_of(platform), currency=COIN, reference_date=date(2025, 3, 31)
        )
        september = await services.outstanding(
            session, settings_of(platform), tz_of(platform), currency=COIN, reference_date=date(2025, 9, 30)
        )
        with pytest.raises(InvalidInput, match="March 31 and September 30"):
            await services.outstanding(
                session,
                settings_of(platform),
                tz_of(platform),
                currency=COIN,
                reference_date=date(2025, 6, 30),
            )
    assert (march_end.issued, march_end.redeemed, march_end.residents) == (20_000, 0, 14_000)
    assert march_end.merchants + march_end.fees == 6_000 and march_end.outstanding == 20_000
    assert (september.redeemed, september.residents, september.outstanding) == (3_000, 13_000, 17_000)
    assert september.residents + september.merchants + september.fees == september.outstanding

    admin = await signed_in(platform, await make_person(platform, roles=("admin",)))
    answer = await client.get(
        "/m/miki/currency/reports/outstanding", params={"currency": COIN, "date": "2025-09-30"}, headers=admin
    )
    assert answer.status_code == 200 and answer.json()["outstanding"] == 17_000
    listed = await client.get(
        "/m/miki/currency/statements",
        params={"currency": COIN, "start": "2025-04-01", "end": "2025-03-01"},
        headers=admin,
    )
    assert listed.status_code == 422 and "must not be before" in listed.json()["detail"]
