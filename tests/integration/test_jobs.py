"""Jobs queued through the outbox run bound to the municipality they were queued for, only where their plugin is
on, once per idempotency key, and never when the queueing transaction rolled back.

The same scenario runs on the embedded broker (dramatiq's StubBroker), on Redis and on RabbitMQ, each with the
relay and a worker in this process. Jobs run on the runner's own event loop with its own engine.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import uuid
from collections.abc import Iterator
from typing import Any

import pika
import pytest
import redis
from sqlalchemy import func, select

from core import Plugin, PluginMeta, Title, hookimpl
from core.db import utcnow
from core.exceptions import CrossTenantAccess, NotFound
from core.jobs import JobContext, JobRunner, job
from core.logging import configure_logging
from core.outbox import OutboxMessage, send_later
from core.outbox.relay import Relay, RelayConfig
from core.platform import Platform, create_platform
from core.tenancy import service
from core.tenancy.manifest import load_manifests
from plugins.notices import services as notice_services
from plugins.notices.models import Notice
from plugins.notices.schemas import NoticeCreate
from tests import conftest

WAIT = 10  # seconds: the longest any step may take before the test fails
REDIS_URL = "redis://127.0.0.1:6379/13"
RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672/"


class Recorder(Plugin):
    """A throwaway plugin with one job, ``recorder.look``, that reports what its context lets it see."""

    meta = PluginMeta(name="recorder", version="1.0", title=Title(ja="記録", en="Recorder"))

    def __init__(self, queue_name: str) -> None:
        self.seen: queue.Queue[dict[str, Any]] = queue.Queue()
        seen = self.seen

        @job(queue=queue_name, max_retries=0)
        async def look(ctx: JobContext, marker: str, other_id: int) -> None:
            async with ctx.session() as session:
                ids = set(await session.scalars(select(Notice.id)))
            try:
                async with ctx.session() as session:
                    session.add(
                        Notice(
                            municipality_id=other_id,
                            category="general",
                            title="x",
                            body="x",
                            published_at=utcnow(),
                        )
                    )
                    await session.flush()
                foreign_write = "allowed"
            except CrossTenantAccess:
                foreign_write = "refused"
            seen.put(
                {
                    "marker": marker,
                    "municipality": ctx.municipality.slug,
                    "plugin": ctx.plugin,
                    "notices": ids,
                    "foreign_write": foreign_write,
                    "key": ctx.message_key,
                }
            )

        self.jobs = [look]

    @hookimpl
    def register_actors(self) -> list[Any]:
        return self.jobs


async def prepared_platform(
    database_url: str, recorder: Recorder, **settings: Any
) -> tuple[Platform, dict[str, set[uuid.UUID]]]:
    """Manifests applied, the recorder enabled in miki, takamatsu and ayagawa, a few notices everywhere."""
    platform = create_platform(
        conftest.replace_settings(conftest.test_settings(database_url), **settings), extra_plugins=[recorder]
    )
    await platform.refresh(force=True)
    await service.apply_manifests(
        platform, load_manifests(conftest.MANIFESTS), [str(p) for p in conftest.MANIFESTS]
    )
    for slug in ("miki", "takamatsu", "ayagawa"):
        await service.set_plugin_enabled(platform, slug, "recorder", True)
    notices: dict[str, set[uuid.UUID]] = {}
    for slug, count in (("miki", 2), ("takamatsu", 3), ("naoshima", 1), ("ayagawa", 1)):
        m = platform.municipality(slug)
        async with platform.sessions.tenant(m.id) as session:
            notices[slug] = {
                (
                    await notice_services.post_notice(
                        session,
                        platform.plugin_settings(m, "notices"),
                        NoticeCreate(title=f"{slug} {i}", body="本文"),
                    )
                ).id
                for i in range(count)
            }
    return platform, notices


class RolledBack(Exception):
    pass


async def queue_look(
    platform: Platform, slug: str, marker: str, other_id: int, key: str | None = None
) -> bool:
    async with platform.sessions.tenant(platform.municipality(slug).id) as session:
        return await send_later(session, "recorder.look", key=key, marker=marker, other_id=other_id)


async def run_scenario(
    database_url: str, caplog: pytest.LogCaptureFixture, queue_name: str, **settings: Any
) -> None:
    recorder = Recorder(queue_name)
    platform, notices = await prepared_platform(database_url, recorder, **settings)
    # Route structlog through the standard library as every process does, and let caplog see the records.
    configure_logging(platform.settings)
    logging.getLogger().addHandler(caplog.handler)
    runner = JobRunner(platform)
    platform.jobs = runner
    relay = Relay(platform, runner, RelayConfig(poll_interval=0.05))
    try:
        assert "recorder.look" in runner.actors
        assert {"core.deliver_event", "core.deliver_event_to"} <= set(runner.actors)
        with pytest.raises(NotFound):
            runner.enqueue(platform.municipality("miki"), "recorder.nothing")
        miki, takamatsu = platform.municipality("miki"), platform.municipality("takamatsu")

        # Relayed while no worker runs: one where the plugin never was enabled, one where it is switched off
        # before the job runs. Both must be skipped when they come up.
        await queue_look(platform, "naoshima", "never", miki.id)
        await queue_look(platform, "ayagawa", "switched-off", miki.id)
        assert await relay.relay_once() == 2
        await service.set_plugin_enabled(platform, "ayagawa", "recorder", False)
        # A message whose transaction rolls back is never sent.
        with pytest.raises(RolledBack):
            async with platform.sessions.tenant(miki.id) as session:
                await send_later(session, "recorder.look", marker="rolled-back", other_id=takamatsu.id)
                raise RolledBack

        runner.start_worker(threads=1)
        relay.start()
        assert await queue_look(platform, "miki", "miki", takamatsu.id, key="miki-once")
        assert not await queue_look(platform, "miki", "miki-again", takamatsu.id, key="miki-once")
        await queue_look(platform, "takamatsu", "takamatsu", miki.id)

        results = {}
        for _ in range(2):
            result = await asyncio.to_thread(recorder.seen.get, timeout=WAIT)
            results[result.pop("marker")] = result
        async with platform.sessions.tenant(takamatsu.id) as session:
            takamatsu_id = str(await session.scalar(select(OutboxMessage.id)))
        assert results == {
            "miki": {
                "municipality": "miki",
                "plugin": "recorder",
                "notices": notices["miki"],
                "foreign_write": "refused",
                "key": "miki-once",
            },
            "takamatsu": {
                "municipality": "takamatsu",
                "plugin": "recorder",
                "notices": notices["takamatsu"],
                "foreign_write": "refused",
                "key": takamatsu_id,
            },
        }
        # Everything queued has been consumed, and the two skipped jobs never ran.
        await asyncio.to_thread(runner.broker.join, queue_name, timeout=WAIT * 1000)
        assert recorder.seen.empty()
        skipped = sorted(
            r.msg["municipality"]
            for r in caplog.records
            if isinstance(r.msg, dict) and r.msg.get("event") == "job.skipped"
        )
        assert skipped == sorted([platform.municipality("naoshima").id, platform.municipality("ayagawa").id])
        async with platform.sessions.platform() as session:
            pending = await session.scalar(
                select(func.count()).select_from(OutboxMessage).where(OutboxMessage.relayed_at.is_(None))
            )
        assert pending == 0
    finally:
        await relay.stop()
        await asyncio.to_thread(runner.stop)
        await platform.close()


async def test_jobs_on_the_embedded_broker(database_url: str, caplog: pytest.LogCaptureFixture) -> None:
    await run_scenario(database_url, caplog, "default")


@pytest.fixture
def redis_db() -> Iterator[str]:
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    try:
        yield REDIS_URL
    finally:
        client.flushdb()
        client.close()


async def test_jobs_on_redis(database_url: str, caplog: pytest.LogCaptureFixture, redis_db: str) -> None:
    await run_scenario(database_url, caplog, f"tsunagu_test_{uuid.uuid4().hex[:8]}", broker_url=redis_db)


@pytest.fixture
def rabbitmq_queue() -> Iterator[str]:
    name = f"tsunagu_test_{uuid.uuid4().hex[:8]}"
    yield name
    connection = pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL))
    try:
        channel = connection.channel()
        for suffix in ("", ".DQ", ".XQ"):
            channel.queue_delete(name + suffix)
    finally:
        connection.close()


async def test_jobs_on_rabbitmq(
    database_url: str, caplog: pytest.LogCaptureFixture, rabbitmq_queue: str
) -> None:
    await run_scenario(database_url, caplog, rabbitmq_queue, broker_url=RABBITMQ_URL)
