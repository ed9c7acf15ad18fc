"""Races on PostgreSQL: parallel payments from one wallet, and one payment retried at once with one key."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from sqlalchemy import func, select

from core.platform import Platform
from plugins.currency import services
from plugins.currency.models import Transfer
from tests.integration.currency.helpers import (
    balance_of,
    fixed_code,
    issue,
    make_person,
    make_shop,
    pay,
    signed_in,
    tenant,
    verified,
)

pytestmark = [pytest.mark.postgres, pytest.mark.parametrize("backend", ["postgres"], indirect=True)]


async def test_a_hundred_parallel_payments_succeed_at_most_balance_over_amount_times(
    platform: Platform,
) -> None:
    payer, shops = await make_person(platform), [await make_shop(platform, name=f"店{i}") for i in range(3)]
    await issue(platform, payer, 10_000)

    async def one(i: int) -> bool:
        try:
            await pay(platform, payer, shops[i % 3], 300)
        except services.InsufficientBalance:
            return False
        return True

    results = await asyncio.gather(*(one(i) for i in range(100)))

    assert sum(results) == 10_000 // 300
    assert await balance_of(platform, "resident", payer) == 10_000 - 33 * 300
    assert sum([await balance_of(platform, "merchant", shop) for shop in shops]) == 33 * 300
    report = await verified(platform)
    assert report.ok, report.problem


async def test_one_payment_sent_ten_times_at_once_with_one_key_is_charged_once(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    payer, shop = await make_person(platform), await make_shop(platform)
    await issue(platform, payer, 5_000)
    headers = {**await signed_in(platform, payer), "idempotency-key": str(uuid.uuid4())}
    body = {"code": fixed_code(platform, shop), "amount": 1_200}

    responses = await asyncio.gather(
        *(client.post("/m/miki/currency/payments", json=body, headers=headers) for _ in range(10))
    )

    assert [r.status_code for r in responses] == [201] * 10, [r.text for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1
    assert sum(r.headers.get("idempotent-replayed") == "true" for r in responses) == 9
    assert await balance_of(platform, "resident", payer) == 3_800
    async with tenant(platform) as session:
        assert (
            await session.scalar(select(func.count()).select_from(Transfer).where(Transfer.kind == "payment"))
            == 1
        )
