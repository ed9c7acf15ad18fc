"""Outputs: participation statistics with small cells suppressed, the open data event list, reminders the day
before (to the person and to their family proxy)."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta

import httpx
from sqlalchemy import update

from plugins.health.models import Registration
from plugins.health.schemas import MeasureIn, PersonCreate
from plugins.health.services import events, measures, outputs, people
from plugins.health.services._outputs import EVENT_HEADERS
from tests.integration.health.helpers import JST, STAFF, Town, in_days


async def test_stats_suppress_cells_under_the_minimum(town: Town, client: httpx.AsyncClient) -> None:
    """Ten people of 75-79 in 井戸 are shown, with their grip strength change; three of 80+ in 田中 are not."""
    day = datetime(2026, 6, 1, 10, tzinfo=JST)
    event = await town.event(starts_at=day, capacity=20, programme="esports")
    async with town.session() as session:
        ctx = town.ctx(day - timedelta(days=1))
        for i, (year, district) in enumerate([(1950, "井戸")] * 10 + [(1940, "田中")] * 3):
            person = await people.add_person(
                session,
                ctx,
                STAFF,
                PersonCreate(name=f"人{i}", name_kana="ヒト", birth_year=year, district=district),
            )
            await events.register(session, ctx, STAFF, event.id, person.id)
            await measures.give_consent(session, ctx, STAFF, person.id, "esports")
            for phase, value in (("before", 20.0 + i), ("after", 22.0 + i)):
                await measures.record_measure(
                    session,
                    ctx,
                    STAFF,
                    MeasureIn(
                        person_id=person.id,
                        event_id=event.id,
                        kind="grip_strength_kg",
                        phase=phase,
                        value=value,
                    ),
                )
        await session.execute(update(Registration).values(checked_in_at=day))
    clerk = await town.headers("clerk", roles=("staff",))
    stats = await client.get(
        town.url("/stats"), params={"first": "2026-04-01", "last": "2027-03-31"}, headers=clerk
    )
    assert stats.status_code == 200, stats.text
    cells = {(c["age_band"], c["district"]): (c["people"], c["attendances"]) for c in stats.json()["cells"]}
    assert cells == {("75-79", "井戸"): (10, 10), ("80+", "田中"): (None, None)}
    outcomes = {(o["age_band"], o["kind"]): (o["people"], o["mean_change"]) for o in stats.json()["outcomes"]}
    assert outcomes == {("75-79", "grip_strength_kg"): (10, 2.0), ("80+", "grip_strength_kg"): (None, None)}
    bad = await client.get(
        town.url("/stats"), params={"first": "2027-01-01", "last": "2026-01-01"}, headers=clerk
    )
    assert bad.status_code == 422


async def test_event_list_as_open_data_csv(town: Town, client: httpx.AsyncClient) -> None:
    await town.event(title="健康ウォーク", title_kana="ケンコウウォーク", min_age=60, residents_only=True)
    response = await client.get(town.url("/events/export.csv"))
    assert response.status_code == 200 and response.content.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert tuple(rows[0]) == EVENT_HEADERS
    row = dict(zip(rows[0], rows[1], strict=True))
    assert row["全国地方公共団体コード"] == "373419" and row["地方公共団体名"] == "三木町"
    assert row["イベント名"] == "健康ウォーク" and row["開始時間"] == "10:00" and row["定員"] == "10"
    assert "60歳以上" in row["備考"] and "町内在住" in row["備考"]


async def test_reminders_the_day_before_reach_person_and_family_once(town: Town) -> None:
    tomorrow = await town.event(days=1)
    later = await town.event(days=3)
    await town.account("son")
    async with town.session() as session:
        ctx = town.ctx()
        grandma = await people.add_person(
            session,
            ctx,
            town.actor("son"),
            PersonCreate(name="三木 ウメ", name_kana="ミキ ウメ", birth_year=1940),
        )
        paper = await people.add_person(
            session, ctx, STAFF, PersonCreate(name="井戸 一郎", name_kana="イド イチロウ", birth_year=1945)
        )
        for event in (tomorrow, later):
            await events.register(session, ctx, town.actor("son"), event.id, grandma.id)
            await events.register(session, ctx, STAFF, event.id, paper.id)
    at_ten = datetime.combine(in_days(0).date(), datetime.min.time(), JST) + timedelta(hours=10)
    for _ in range(2):
        async with town.session() as session:
            assert (
                await outputs.send_reminders(session, town.ctx(at_ten)) == 1
            )  # the paper person gets a call
    [reminder] = await town.notifications("son")
    assert reminder.template == "health.reminder" and grandma.short_code in reminder.body
