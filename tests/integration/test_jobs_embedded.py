"""The embedded default (in-memory broker, jobs in the serving process): a request's job runs in the app, and a
message the in-memory broker held when its process stopped is sent again by the next one, not lost."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from core.app import create_app
from core.audit import AuditEvent
from core.jobs import JobRunner
from core.outbox import OutboxMessage, send_later
from core.outbox.relay import Relay
from core.platform import Platform, create_platform
from core.tenancy import service
from tests import conftest
from tests.asgi import lifespan_client
from tests.outbox_probe import plugin as probe

WAIT = 10.0


async def probe_platform(database_url: str) -> Platform:
    platform = create_platform(conftest.test_settings(database_url), extra_plugins=[probe])
    await platform.refresh(force=True)
    return platform


async def effects(platform: Platform, slug: str) -> list[str]:
    async with platform.sessions.tenant(platform.municipality(slug).id) as session:
        return list(
            await session.scalars(select(AuditEvent.target_id).where(AuditEvent.action == "probe.effect"))
        )


async def wait_for_effects(platform: Platform, slug: str, expected: list[str]) -> None:
    async def poll() -> None:
        while sorted(await effects(platform, slug)) != sorted(expected):
            await asyncio.sleep(0.05)

    await asyncio.wait_for(poll(), timeout=WAIT)


async def test_a_requests_job_runs_inside_the_app(platform: Platform) -> None:
    await platform.close()
    app_platform = await probe_platform(platform.settings.database_url)
    await service.set_plugin_enabled(app_platform, "miki", "probe", True)
    async with lifespan_client(create_app(platform=app_platform)) as client:
        response = await client.post("/m/miki/probe/items", json={"marker": "from-a-request"})
        assert response.status_code == 202, response.text
        await wait_for_effects(app_platform, "miki", ["from-a-request"])


async def test_a_message_held_by_a_stopped_process_is_sent_again(platform: Platform) -> None:
    await platform.close()
    first = await probe_platform(platform.settings.database_url)
    await service.set_plugin_enabled(first, "miki", "probe", True)
    miki = first.municipality("miki")
    async with first.sessions.tenant(miki.id) as session:
        await send_later(session, "probe.effect", key="held", marker="held")
    # The first process hands the message to its in-memory broker and stops before any worker ran it.
    stopped = JobRunner(first)
    relay = Relay(first, stopped)
    assert await relay.relay_once() == 1
    await relay.stop()
    stopped.stop()
    async with first.sessions.tenant(miki.id) as session:
        row = await session.scalar(select(OutboxMessage))
    assert row is not None and row.sent_at is not None and row.relayed_at is None
    await first.close()

    second = await probe_platform(platform.settings.database_url)
    async with lifespan_client(create_app(platform=second)):
        await wait_for_effects(second, "miki", ["held"])

        async def relayed() -> None:
            while True:
                async with second.sessions.tenant(miki.id) as session:
                    if await session.scalar(select(OutboxMessage.relayed_at)) is not None:
                        return
                await asyncio.sleep(0.05)

        await asyncio.wait_for(relayed(), timeout=WAIT)
