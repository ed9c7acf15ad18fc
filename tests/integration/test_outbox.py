"""The outbox: a message is written in the caller's transaction, once per key and municipality, seen only by its
own municipality, and relayed to the broker after commit: when due, by one relay only, and kept while the broker
is down."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import Iterator
from datetime import timedelta

import pytest
import redis
from dramatiq.brokers.redis import RedisBroker
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, text, update

from core.db import utcnow
from core.jobs import JobContext, JobRun, JobRunner
from core.outbox import OutboxMessage, publish_event, send_later
from core.outbox.relay import BrokerUnavailable, Relay, RelayConfig
from core.platform import Platform
from tests.processes import free_port

SLUGS = ("miki", "takamatsu", "naoshima")
REDIS_URL = "redis://127.0.0.1:6379/11"


class RolledBack(Exception):
    pass


async def pending(platform: Platform) -> list[OutboxMessage]:
    async with platform.sessions.platform() as session:
        return list(
            await session.scalars(
                select(OutboxMessage).where(OutboxMessage.relayed_at.is_(None)).order_by(OutboxMessage.key)
            )
        )


async def test_a_message_commits_and_rolls_back_with_the_callers_transaction(platform: Platform) -> None:
    miki = platform.municipality("miki")
    with pytest.raises(RolledBack):
        async with platform.sessions.tenant(miki.id) as session:
            await send_later(session, "notices.remind", key="gone", notice="n1")
            raise RolledBack
    later = utcnow() + timedelta(hours=2)
    async with platform.sessions.tenant(miki.id) as session:
        assert await send_later(session, "notices.remind", key="kept", not_before=later, notice="n2")
    [row] = await pending(platform)
    assert (row.municipality_id, row.key, row.job, row.kwargs) == (
        miki.id,
        "kept",
        "notices.remind",
        {"notice": "n2"},
    )
    assert row.not_before == later


async def test_bad_messages_are_refused_and_nothing_is_written(platform: Platform) -> None:
    miki = platform.municipality("miki")
    async with platform.sessions.platform() as session:
        with pytest.raises(TypeError, match="bound to a municipality"):
            await send_later(session, "notices.remind")
    async with platform.sessions.tenant(miki.id) as session:
        for job in ("remind", "Notices.remind", "notices.", "notices.remind; drop"):
            with pytest.raises(ValueError, match="job name"):
                await send_later(session, job)
        with pytest.raises(TypeError, match="JSON"):
            await send_later(session, "notices.remind", when=object())
        with pytest.raises(ValueError, match="time-zone aware"):
            await send_later(session, "notices.remind", not_before=utcnow().replace(tzinfo=None))
        with pytest.raises(ValueError, match="key"):
            await send_later(session, "notices.remind", key="k" * 201)
        with pytest.raises(ValueError, match="event name"):
            await publish_event(session, "confirmed")
        with pytest.raises(ValueError, match="event key"):
            await publish_event(session, "booking.confirmed", key="k" * 151)
    assert await pending(platform) == []


operations = st.lists(
    st.tuples(st.sampled_from(SLUGS), st.sampled_from(["send", "once"]), st.sampled_from(["a", "b", "c"])),
    min_size=1,
    max_size=8,
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations)
async def test_keys_and_done_marks_belong_to_one_municipality(
    platform: Platform, ops: list[tuple[str, str, str]]
) -> None:
    run = uuid.uuid4().hex[:8]  # examples share the database: each one keeps to its own keys
    sent: dict[str, set[str]] = defaultdict(set)
    done: dict[str, set[str]] = defaultdict(set)
    for slug, kind, word in ops:
        m = platform.municipality(slug)
        key = f"{run}-{word}"
        async with platform.sessions.tenant(m.id) as session:
            if kind == "send":
                assert await send_later(session, "notices.remind", key=key) == (key not in sent[slug])
                sent[slug].add(key)
            else:
                ctx = JobContext(platform, m, "notices", job="notices.remind", message_key=key)
                assert await ctx.once(session) == (key not in done[slug])
                done[slug].add(key)

    for slug in SLUGS:
        m = platform.municipality(slug)
        async with platform.sessions.tenant(m.id) as session:
            keys = set(
                await session.scalars(select(OutboxMessage.key).where(OutboxMessage.key.like(f"{run}-%")))
            )
            assert keys == sent[slug]
            marks = set(await session.scalars(select(JobRun.key).where(JobRun.key.like(f"{run}-%"))))
            assert marks == done[slug]
            # A bulk update reaches this municipality's rows only.
            changed = await session.execute(
                update(OutboxMessage).where(OutboxMessage.key.like(f"{run}-%")).values(attempts=7)
            )
            assert changed.rowcount == len(sent[slug])
            if platform.settings.is_postgres:  # row-level security holds for raw SQL too
                raw = await session.scalar(
                    text("SELECT count(*) FROM outbox_messages WHERE key LIKE :k"), {"k": f"{run}-%"}
                )
                assert raw == len(sent[slug])
            await session.rollback()


@pytest.fixture
def redis_db() -> Iterator[str]:
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    try:
        yield REDIS_URL
    finally:
        client.flushdb()
        client.close()


async def test_the_relay_sends_what_is_due_and_keeps_what_the_broker_did_not_take(
    platform: Platform, redis_db: str
) -> None:
    miki = platform.municipality("miki")
    async with platform.sessions.tenant(miki.id) as session:
        await send_later(session, "core.deliver_event", key="due", event={})
        await send_later(
            session, "core.deliver_event", key="later", not_before=utcnow() + timedelta(hours=1), event={}
        )
        await send_later(session, "nobody.knows", key="unknown")

    down = JobRunner(platform, RedisBroker(url=f"redis://127.0.0.1:{free_port()}/0"))
    with pytest.raises(BrokerUnavailable):
        await Relay(platform, down).relay_once()
    assert [r.key for r in await pending(platform)] == ["due", "later", "unknown"]

    up = JobRunner(platform, RedisBroker(url=redis_db))
    relay = Relay(platform, up)
    try:
        assert await relay.relay_once() == 1
        assert await relay.relay_once() == 0
    finally:
        await relay.stop()
        up.stop()
        down.stop()
    left = {r.key: r for r in await pending(platform)}
    assert set(left) == {"later", "unknown"}
    assert left["unknown"].attempts == 1 and "no job named" in (left["unknown"].last_error or "")
    assert left["unknown"].not_before > utcnow()  # set aside, retried later
    client = redis.Redis.from_url(redis_db)
    try:
        assert client.llen("dramatiq:default") == 1
    finally:
        client.close()


async def test_relays_side_by_side_send_each_message_once(platform: Platform, redis_db: str) -> None:
    count = 300
    for slug in SLUGS:
        async with platform.sessions.tenant(platform.municipality(slug).id) as session:
            for i in range(count // len(SLUGS)):
                await send_later(session, "core.deliver_event", key=f"m{i}", event={})
    runners = [JobRunner(platform, RedisBroker(url=redis_db)) for _ in range(3)]
    relays = [Relay(platform, r, RelayConfig(batch_size=25)) for r in runners]

    async def drain(relay: Relay) -> int:
        total = 0
        while sent := await relay.relay_once():
            total += sent
        return total

    try:
        totals = await asyncio.gather(*(drain(r) for r in relays))
    finally:
        for relay, runner in zip(relays, runners, strict=True):
            await relay.stop()
            runner.stop()
    assert sum(totals) == count
    assert await pending(platform) == []
    client = redis.Redis.from_url(redis_db)
    try:  # every message id reached the broker once: as many queue entries as distinct messages
        assert client.llen("dramatiq:default") == count
        assert client.hlen("dramatiq:default.msgs") == count
    finally:
        client.close()
    async with platform.sessions.platform() as session:
        assert await session.scalar(select(func.count()).select_from(OutboxMessage)) == count
