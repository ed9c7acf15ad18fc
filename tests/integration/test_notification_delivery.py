"""The whole way, with nothing lost: a topic send made while the broker is down stays in the outbox; once the
broker (real Redis) is back, the relay and a worker deliver it to every subscriber, by email (real SMTP) and in
the inbox, once each."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
import redis
from dramatiq.brokers.redis import RedisBroker
from sqlalchemy import func, select

from core.jobs import JobRunner
from core.notifications.models import Notification
from core.notifications.topics import subscribe
from core.outbox import OutboxMessage
from core.outbox.relay import BrokerUnavailable, Relay
from core.platform import Platform
from tests.notification_support import MailSink, person, smtp_server
from tests.processes import free_port

REDIS_URL = "redis://127.0.0.1:6379/14"
WAIT = 15.0  # seconds: the longest delivery may take before the test fails


@pytest.fixture
def redis_db() -> Iterator[str]:
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    try:
        yield REDIS_URL
    finally:
        client.flushdb()
        client.close()


@pytest.fixture
def smtp(monkeypatch: pytest.MonkeyPatch) -> Iterator[MailSink]:
    with smtp_server(monkeypatch) as sink:
        yield sink


async def pending(platform: Platform) -> int:
    async with platform.sessions.platform() as session:
        query = select(func.count()).select_from(OutboxMessage).where(OutboxMessage.relayed_at.is_(None))
        return int(await session.scalar(query) or 0)


async def test_a_topic_send_made_while_the_broker_is_down_reaches_everyone_once_it_is_back(
    platform: Platform, client: httpx.AsyncClient, smtp: MailSink, redis_db: str
) -> None:
    staff = await person(platform, "miki", "staff")
    subscribers = [await person(platform, "miki", email_address=f"resident{n}@example.jp") for n in range(3)]
    async with platform.sessions.tenant(platform.municipality("miki").id) as session:
        for someone in subscribers:
            await subscribe(session, someone.id, "bousai")

    response = await client.post(
        "/m/miki/notifications/topics/bousai/send",
        headers=staff.headers,
        json={"subject": "避難所開設", "body": "体育館を開放しました。"},
    )
    assert response.status_code == 202, response.text
    down = JobRunner(platform, RedisBroker(url=f"redis://127.0.0.1:{free_port()}/0"))
    try:
        with pytest.raises(BrokerUnavailable):
            await Relay(platform, down).relay_once()
    finally:
        down.stop()
    assert await pending(platform) == 1  # the fan-out, kept

    runner = JobRunner(platform, RedisBroker(url=redis_db))
    relay = Relay(platform, runner)
    runner.start_worker(threads=2)
    try:
        deadline = asyncio.get_running_loop().time() + WAIT
        while len(smtp.received) < len(subscribers) or await pending(platform):
            assert asyncio.get_running_loop().time() < deadline, (len(smtp.received), await pending(platform))
            await relay.relay_once()
            await asyncio.sleep(0.05)
    finally:
        await relay.stop()
        await asyncio.to_thread(runner.stop)

    assert sorted(to for to, _ in smtp.received) == [[f"resident{n}@example.jp"] for n in range(3)]
    assert {m["Subject"] for _, m in smtp.received} == {"避難所開設"}
    async with platform.sessions.tenant(platform.municipality("miki").id) as session:
        inboxes = await session.execute(
            select(Notification.account_id, func.count()).group_by(Notification.account_id)
        )
        assert dict(inboxes.all()) == {s.id: 1 for s in subscribers}
