"""Periodic jobs are queued once per period in each municipality where their plugin is enabled, however many
schedulers race for the period."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from core import Plugin, PluginMeta, Title, hookimpl
from core.jobs import JobContext, JobRunner, Periodic, PeriodicScheduler, job
from core.outbox import OutboxMessage
from core.platform import Platform, create_platform
from core.tenancy import service
from tests import conftest


@job()
async def sweep(ctx: JobContext) -> None: ...


@job()
async def forgotten(ctx: JobContext) -> None: ...


class Sweeper(Plugin):
    meta = PluginMeta(name="sweeper", version="1.0", title=Title(ja="掃除", en="Sweeper"))

    @hookimpl
    def register_actors(self) -> list[Any]:
        return [sweep]

    @hookimpl
    def register_periodic_jobs(self) -> list[Periodic]:
        # ``forgotten`` is not registered as an actor: it is left out, not queued where nothing could run it.
        return [
            Periodic(job=sweep, every=timedelta(minutes=10)),
            Periodic(job=forgotten, every=timedelta(hours=1)),
        ]


async def scheduler_process(database_url: str) -> PeriodicScheduler:
    """What one app or worker process has: its own platform, engine and job runner."""
    platform = create_platform(conftest.test_settings(database_url), extra_plugins=[Sweeper()])
    await platform.refresh(force=True)
    platform.jobs = JobRunner(platform)
    return PeriodicScheduler(platform)


async def periodic_messages(platform: Platform) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    async with platform.sessions.platform() as session:
        for municipality_id, key in await session.execute(
            select(OutboxMessage.municipality_id, OutboxMessage.key).where(
                OutboxMessage.key.like("periodic:sweeper.%")
            )
        ):
            found.setdefault(platform.snapshot.by_id[municipality_id].slug, set()).add(key)
    return found


async def test_hook_register_periodic_jobs(platform: Platform) -> None:
    url = platform.settings.database_url
    schedulers = [await scheduler_process(url) for _ in range(4)]
    first = schedulers[0].platform
    for slug in ("miki", "ayagawa"):
        await service.set_plugin_enabled(first, slug, "sweeper", True)
    try:
        for scheduler in schedulers:
            await scheduler.platform.refresh()
            # Other loaded plugins may declare periodic jobs too; this test watches the sweeper's.
            assert [s.name for s in scheduler.jobs if s.plugin == "sweeper"] == ["sweeper.sweep"]
        now = datetime(2026, 5, 1, 3, 7, tzinfo=UTC)
        for moment in (now, now + timedelta(minutes=1), now + timedelta(minutes=12)):
            # Every process ticks at once, twice, as if their clocks crossed the boundary together.
            results = await asyncio.gather(*(s.run_once(moment) for s in schedulers * 2))
            queued = sorted(item for result in results for item in result if item[1].startswith("sweeper."))
            if moment == now + timedelta(minutes=1):
                assert queued == []  # same period: already claimed
            else:
                start = (
                    datetime(2026, 5, 1, 3, 0, tzinfo=UTC)
                    if moment == now
                    else datetime(2026, 5, 1, 3, 10, tzinfo=UTC)
                )
                assert queued == [("ayagawa", "sweeper.sweep", start), ("miki", "sweeper.sweep", start)]
        keys = {"periodic:sweeper.sweep:2026-05-01T03:00:00Z", "periodic:sweeper.sweep:2026-05-01T03:10:00Z"}
        assert await periodic_messages(first) == {"miki": keys, "ayagawa": keys}
    finally:
        for scheduler in schedulers:
            await scheduler.platform.close()
