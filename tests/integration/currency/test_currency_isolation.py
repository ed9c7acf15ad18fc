"""No currency read or write bound to one municipality touches another's ledger: random activity in several
towns, then every way of reading in each town sees only its own, and another town's codes and transfers are
unknown there."""

from __future__ import annotations

import uuid
from collections import defaultdict

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from core.exceptions import InvalidInput, NotFound
from core.platform import Platform
from core.tenancy import service
from plugins.currency import services
from plugins.currency.models import Entry, LedgerAccount, Lot, Merchant, Transfer
from tests.integration.currency.helpers import (
    fixed_code,
    make_person,
    make_shop,
    settings_of,
    signed_in,
    tenant,
    tz_of,
)

TOWNS = ["miki", "takamatsu", "naoshima"]

activity = st.lists(
    st.tuples(st.sampled_from(TOWNS), st.integers(1, 3_000), st.integers(0, 3_000)), min_size=1, max_size=5
)


@pytest.fixture
async def towns(platform: Platform) -> Platform:
    for slug in TOWNS[1:]:
        await service.set_plugin_enabled(platform, slug, "currency", True)
    return platform


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=activity)
async def test_each_town_sees_only_its_own_ledger(
    towns: Platform, client: httpx.AsyncClient, ops: list[tuple[str, int, int]]
) -> None:
    platform = towns
    transfers: dict[str, set[uuid.UUID]] = defaultdict(set)
    codes: dict[str, str] = {}
    for slug in TOWNS:
        async with tenant(platform, slug) as session:
            transfers[slug] = set(await session.scalars(select(Transfer.id)))
    person = await make_person(platform, "miki")
    for slug, issued, paid in ops:
        currency = settings_of(platform, slug).currencies[0].code
        shop = await make_shop(platform, slug)
        codes[slug] = fixed_code(platform, shop, slug, currency)
        async with tenant(platform, slug) as session:
            out = await services.issue(
                session,
                settings_of(platform, slug),
                person_id=person,
                currency=currency,
                purchased=issued,
                actor="cli",
            )
            transfers[slug].add(out.id)
        if 0 < paid <= issued:
            async with tenant(platform, slug) as session:
                payment = await services.pay(
                    session,
                    settings_of(platform, slug),
                    key=services.code_key(platform.settings),
                    municipality=slug,
                    tz=tz_of(platform, slug),
                    payer_id=person,
                    code=codes[slug],
                    amount=paid,
                    actor="cli",
                )
                transfers[slug].add(payment.id)

    for slug in TOWNS:
        others = {t for other in TOWNS if other != slug for t in transfers[other]}
        async with tenant(platform, slug) as session:
            assert set(await session.scalars(select(Transfer.id))) == transfers[slug]
            assert set(await session.scalars(select(Entry.transfer_id))) == transfers[slug]
            owners = {a.municipality_id for a in await session.scalars(select(LedgerAccount))}
            owners |= {lot.municipality_id for lot in await session.scalars(select(Lot))}
            owners |= {m.municipality_id for m in await session.scalars(select(Merchant))}
            assert owners <= {platform.municipality(slug).id}
            report = await services.verify(session)
            assert report.ok and report.transfers == len(transfers[slug])
            for foreign in list(others)[:3]:
                with pytest.raises(NotFound):
                    await services.reverse(session, transfer_id=foreign, actor="cli")
        for other, code in codes.items():
            if other == slug:
                continue
            async with tenant(platform, slug) as session:
                with pytest.raises(InvalidInput, match="another municipality"):
                    await services.pay(
                        session,
                        settings_of(platform, slug),
                        key=services.code_key(platform.settings),
                        municipality=slug,
                        tz=tz_of(platform, slug),
                        payer_id=person,
                        code=code,
                        amount=1,
                        actor="cli",
                    )
    # Over HTTP the person's wallet in each town holds only what that town issued.
    async with tenant(platform, "miki") as session:
        miki_value = (
            (await services.wallet(session, settings_of(platform, "miki"), person)).currencies[0].balance
        )
    headers = await signed_in(platform, person)
    wallet = (await client.get("/m/miki/currency/wallet", headers=headers)).json()
    assert wallet["currencies"][0]["balance"] == miki_value
