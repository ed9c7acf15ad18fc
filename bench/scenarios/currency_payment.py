"""Payment: a signed-in resident pays a shop with its QR code, once per ``Idempotency-Key`` (currency plugin).

Platform: ``POST /currency/payments`` with the person's session cookie, CSRF token and a fresh Idempotency-Key
(tenant binding, session check, the key claimed, the signed code checked, the limits, both accounts locked, the
day's spending summed, balances updated, the oldest lot drawn, entries inserted, the audit event, the deferred
balance check at commit). Reference: the key looked up, both accounts locked, the balance checked, both
balances updated, the transfer and its two entries inserted. Payers and shops are spread so that no 32
concurrent payments queue on one wallet's lock: 8 payers and 10 shops in each municipality.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import msgspec
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.load import Request
from bench.reference.currency import accounts
from bench.scenarios._people import residents, spread
from bench.scenarios.base import REFERENCE_HOST, Scenario, host_of
from core.platform import Platform
from core.tenancy.registry import Municipality
from plugins.currency import services

PATH = "/currency/payments"
PAYERS, SHOPS, AMOUNT = 8, 10, 10


def headers(person: dict[str, str]) -> dict[str, str]:
    return {**person, "idempotency-key": str(uuid.uuid4())}


class CurrencyPayment(Scenario):
    name = "currency_payment"
    title = "currency payment"
    order = 50
    plugins = {"currency": {}}
    reference_module = "bench.reference.currency"
    expect_status = 201

    async def platform_requests(
        self, platform: Platform, municipalities: Sequence[Municipality], total: int
    ) -> list[Request]:
        plan = spread(municipalities, total)
        each = -(-total // (len(municipalities) * PAYERS)) + 1
        payers, codes = {}, {}
        key = services.code_key(platform.settings)
        for municipality in municipalities:
            settings = platform.plugin_settings(municipality, "currency")
            currency = settings.currencies[0]
            people = await residents(platform, municipality, PAYERS)
            if each * AMOUNT > currency.max_balance:
                raise ValueError(f"{total} payments exceed {currency.code}'s max_balance: raise PAYERS")
            async with platform.sessions.tenant(municipality.id) as session:
                shops = [
                    await services.register_merchant(
                        session, settings, name=f"店{n}", category="food", actor="cli"
                    )
                    for n in range(SHOPS)
                ]
                for person in people:
                    await services.issue(session, settings, person_id=person.account_id, currency=currency.code,
                                         purchased=each * AMOUNT, actor="cli")  # fmt: skip
            payers[municipality.id] = [p.headers for p in people]
            codes[municipality.id] = [
                services.make_code(
                    key, municipality=municipality.slug, merchant_id=s.id, currency=currency.code
                )
                for s in shops
            ]
        return [
            Request(
                method="POST",
                path=PATH,
                host=host_of(m),
                headers=headers(payers[m.id][index % PAYERS]),
                body=msgspec.json.encode({"code": codes[m.id][index % SHOPS], "amount": AMOUNT}).decode(),
            )
            for index, m in plan
        ]

    async def reference_requests(self, engine: AsyncEngine, total: int) -> list[Request]:
        towns = 8
        payers = [uuid.uuid4() for _ in range(towns * PAYERS)]
        shops = [uuid.uuid4() for _ in range(towns * SHOPS)]
        each = -(-total // len(payers)) + 1
        async with engine.begin() as conn:
            await conn.execute(
                insert(accounts),
                [{"id": p, "balance": each * AMOUNT} for p in payers]
                + [{"id": s, "balance": 0} for s in shops],
            )
        return [
            Request(
                method="POST",
                path=PATH,
                host=REFERENCE_HOST,
                headers=headers({}),
                body=msgspec.json.encode(
                    {"payer": payers[n % len(payers)], "shop": shops[n % len(shops)], "amount": AMOUNT}
                ).decode(),
            )
            for n in range(total)
        ]


SCENARIO = CurrencyPayment()
