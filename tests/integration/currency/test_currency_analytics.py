"""Purchase statistics: cells of fewer than k people are suppressed, and so is whatever else would let the week's
total give one away; overlapping queries, and queries before and after later activity, return the same cells,
so differencing them isolates nobody. Analysts get aggregates only."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime

import httpx

from core.platform import Platform
from plugins.currency import services
from tests.integration.currency.helpers import (
    issue,
    make_person,
    make_shop,
    pay,
    settings_of,
    signed_in,
    tenant,
    tz_of,
)

K = 10


def day(text: str) -> datetime:
    return datetime.fromisoformat(f"{text}T03:00:00").replace(tzinfo=UTC)


async def resident(
    platform: Platform, birth_year: int | None = 1980, postal_code: str = "761-0701"
) -> uuid.UUID:
    person = await make_person(platform, postal_code=postal_code, residence="miki")
    if birth_year is not None:
        async with tenant(platform) as session:
            await services.set_profile(session, person, birth_year, actor="cli")
    await issue(platform, person, 10_000, now=day("2025-03-01"))
    return person


async def stats(platform: Platform, first: str, last: str) -> services.StatsOut:  # type: ignore[name-defined]
    async with tenant(platform) as session:
        return await services.weekly_stats(
            session,
            settings_of(platform),
            tz_of(platform),
            currency="MIKI",
            first=first,
            last=last,
            actor="cli",
        )


async def test_small_cells_and_their_complements_are_suppressed(platform: Platform) -> None:
    food, retail, pharmacy = (
        await make_shop(platform, category="food"),
        await make_shop(platform, category="retail", name="雑貨"),
        await make_shop(platform, category="health", name="薬局"),
    )
    regulars = [await resident(platform) for _ in range(K)]
    shoppers = [await resident(platform, birth_year=1950, postal_code="761-0705") for _ in range(K + 2)]
    loner = await resident(platform)
    for person in regulars:
        await pay(platform, person, food, 1_000, now=day("2025-03-04"))  # 2025-W10
    for person in shoppers:
        await pay(platform, person, retail, 500, now=day("2025-03-05"))
    await pay(platform, loner, pharmacy, 3_210, now=day("2025-03-06"))

    (week,) = (await stats(platform, "2025-W10", "2025-W10")).weeks
    cells = {(c.category, c.age_band, c.district): c for c in week.cells}
    assert (
        cells[("retail", "70-79", "氷上")].amount == 6_000
        and cells[("retail", "70-79", "氷上")].people == K + 2
    )
    # The loner's cell is withheld, and so is the smallest other one: total − published covers K + 1 people.
    assert cells[("health", "40-49", "井戸")].amount is None
    assert cells[("food", "40-49", "井戸")].amount is None and cells[("food", "40-49", "井戸")].people is None
    assert (week.people, week.amount) == (2 * K + 3, 10_000 + 6_000 + 3_210)
    published = sum(c.amount for c in week.cells if c.amount is not None)
    assert (
        week.amount - published == 10_000 + 3_210
    )  # the loner's 3,210 only ever appears mixed with 10 others


async def test_differencing_overlapping_or_later_queries_reveals_nothing(platform: Platform) -> None:
    food = await make_shop(platform, category="food")
    people = [await resident(platform) for _ in range(K)]
    outsider = await make_person(platform, residence="takamatsu")
    await issue(platform, outsider, 5_000, now=day("2025-03-01"))
    for i, person in enumerate(people):
        await pay(platform, person, food, 100 + i, now=day("2025-03-11"))  # 2025-W11
        await pay(platform, person, food, 200, now=day("2025-03-18"))  # 2025-W12
    await pay(platform, outsider, food, 777, now=day("2025-03-12"))

    early = await stats(platform, "2025-W10", "2025-W11")
    late = await stats(platform, "2025-W11", "2025-W12")
    assert early.weeks[1] == late.weeks[0]  # the shared week is the same cells, whatever the range
    outside = [c for c in late.weeks[0].cells if c.district == "outside"]
    assert [c.amount for c in outside] == [None]

    # A payment recorded late into a published week, and a person who now gives a year of birth, change nothing.
    await pay(platform, people[0], food, 999, now=day("2025-03-12"))
    async with tenant(platform) as session:
        await services.set_profile(session, outsider, 1990, actor="cli")
    again = await stats(platform, "2025-W11", "2025-W12")
    assert again == late


async def test_analysts_get_csv_and_json_and_nobody_else_does(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    food = await make_shop(platform, category="food")
    for _ in range(K):
        await pay(platform, await resident(platform), food, 300, now=day("2025-03-11"))
    analyst = await signed_in(platform, await make_person(platform, roles=("admin",)))
    params = {"currency": "MIKI", "start": "2025-W11", "end": "2025-W11"}

    as_csv = await client.get("/m/miki/currency/stats", params={**params, "format": "csv"}, headers=analyst)
    assert as_csv.status_code == 200 and as_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(as_csv.text)))
    assert rows == [
        ["week", "category", "age_band", "district", "people", "payments", "amount"],
        ["2025-W11", "food", "40-49", "井戸", "10", "10", "3000"],
        ["2025-W11", "*", "*", "*", "10", "", "3000"],
    ]
    as_json = await client.get("/m/miki/currency/stats", params=params, headers=analyst)
    assert as_json.json()["weeks"][0]["cells"][0]["amount"] == 3_000
    for wrong in (
        {**params, "start": "2025-11"},
        {**params, "format": "xlsx"},
        {**params, "end": "2027-W01"},
    ):
        assert (await client.get("/m/miki/currency/stats", params=wrong, headers=analyst)).status_code == 422
    shopper = await signed_in(platform, await make_person(platform))
    assert (await client.get("/m/miki/currency/stats", params=params, headers=shopper)).status_code == 403


async def test_the_daily_job_publishes_last_week_once(platform: Platform) -> None:
    from sqlalchemy import select

    from core.jobs import JobContext
    from plugins.currency import tasks
    from plugins.currency.models import StatsWeek

    ctx = JobContext(platform, platform.municipality("miki"), "currency", job="currency.publish_stats")
    await tasks.publish_stats(ctx)
    await tasks.publish_stats(ctx)
    async with tenant(platform) as session:
        weeks = list(await session.scalars(select(StatsWeek)))
    assert [(w.currency, w.people, w.min_people) for w in weeks] == [("MIKI", None, K)]
