"""Webhooks against a real HTTP server (started here) that verifies every signature as the docs tell receivers
to: registration by an administrator with the secret shown once, what is posted, retries with backoff, giving up."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from core.db.base import utcnow
from core.notifications import notify, notify_topic
from core.notifications.models import Delivery
from core.outbox import OutboxMessage
from core.platform import Platform
from tests.notification_support import WebhookReceiver, deliveries, person, run_jobs, webhook_receiver

MESSAGE = {"subject": "断水のお知らせ", "body": "明日9時から12時まで断水します。"}


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("TSUNAGU_NOTIFY_RETRY_SECONDS", "0")
    monkeypatch.setenv("TSUNAGU_NOTIFY_MAX_ATTEMPTS", "3")
    with webhook_receiver() as found:
        yield found


async def register(
    client: httpx.AsyncClient, admin: Any, receiver: WebhookReceiver, **body: Any
) -> dict[str, Any]:
    body = {
        "name": "防災無線連携",
        "url": receiver.url,
        "templates": ["core.message"],
        "topics": ["bousai"],
        **body,
    }
    response = await client.post("/m/miki/notifications/webhooks", headers=admin.headers, json=body)
    assert response.status_code == 201, response.text
    created = response.json()
    receiver.secret = created["secret"]
    return created


async def message_to(platform: Platform, *people: uuid.UUID) -> None:
    async with platform.sessions.tenant(platform.municipality("miki").id) as session:
        await notify(session, template="core.message", to=list(people), context=MESSAGE)


async def test_an_administrator_registers_an_endpoint_and_sees_the_secret_once(
    platform: Platform, client: httpx.AsyncClient, receiver: WebhookReceiver
) -> None:
    admin = await person(platform, "miki", "admin")
    staff = await person(platform, "miki", "staff")
    created = await register(client, admin, receiver)
    assert created["secret"].startswith("whsec_") and len(created["secret"]) > 40
    listed = await client.get("/m/miki/notifications/webhooks", headers=admin.headers)
    assert listed.json() == [created["endpoint"]]
    assert "secret" not in listed.text

    url = "/m/miki/notifications/webhooks"
    assert (
        await client.post(url, headers=staff.headers, json={"name": "x", "url": receiver.url})
    ).status_code == 403
    for body, status in (
        ({"name": "x", "url": "ftp://example.jp/", "templates": ["core.message"]}, 422),
        ({"name": "x", "url": "https://user:pw@example.jp/", "templates": ["core.message"]}, 422),
        ({"name": "x", "url": "https://example.jp/"}, 422),
        ({"name": "x", "url": "https://example.jp/", "templates": ["Core Message"]}, 422),
        ({"name": "x", "url": "https://example.jp/", "topics": ["nothing"]}, 404),
    ):
        response = await client.post(url, headers=admin.headers, json=body)
        assert response.status_code == status, (body, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    # Other towns neither see it nor can remove it.
    at_sanuki = await person(platform, "sanuki", "admin", account_id=admin.id)
    assert (await client.get("/m/sanuki/notifications/webhooks", headers=at_sanuki.headers)).json() == []
    endpoint = created["endpoint"]["id"]
    assert (
        await client.delete(f"/m/sanuki/notifications/webhooks/{endpoint}", headers=at_sanuki.headers)
    ).status_code == 404
    assert (await client.delete(f"{url}/{endpoint}", headers=admin.headers)).status_code == 204
    assert (await client.get(url, headers=admin.headers)).json() == []


async def test_notifications_and_topic_sends_are_posted_signed(
    platform: Platform, client: httpx.AsyncClient, receiver: WebhookReceiver
) -> None:
    admin = await person(platform, "miki", "admin")
    ja, en = await person(platform, "miki"), await person(platform, "miki", locale="en")
    await register(client, admin, receiver)
    await message_to(platform, ja.id, en.id)
    async with platform.sessions.tenant(platform.municipality("miki").id) as session:
        await notify_topic(session, topic="bousai", template="core.message", context=MESSAGE)
    await run_jobs(platform)

    posts = receiver.posts()
    assert [p["signed"] for p in posts] == [True, True, True]
    by_type: dict[str, list[dict[str, Any]]] = {}
    for p in posts:
        by_type.setdefault(p["body"]["type"], []).append(p)
        assert p["headers"]["tsunagu-delivery"] == p["body"]["id"]
        assert p["headers"]["tsunagu-event"] == p["body"]["type"]
        assert p["headers"]["content-type"] == "application/json"
    assert sorted(p["body"]["data"]["account_id"] for p in by_type["notification"]) == sorted(
        [str(ja.id), str(en.id)]
    )
    assert {p["body"]["data"]["subject"] for p in by_type["notification"]} == {"断水のお知らせ"}
    [topic_send] = by_type["topic_send"]
    assert topic_send["body"]["municipality"] == "miki"
    assert topic_send["body"]["data"]["topic"] == "bousai"
    assert topic_send["body"]["data"]["texts"]["ja"] == MESSAGE
    assert {d.status for d in await deliveries(platform, "miki") if d.channel == "webhook"} == {"sent"}

    # The check the receiver runs is not blind: another secret, or a changed body, fails it.
    first = posts[0]
    assert not receiver.check(
        first["headers"], json.dumps({**first["body"], "municipality": "sanuki"}).encode()
    )
    receiver.secret = "whsec_someone_else"
    assert not receiver.check(first["headers"], first["raw"])


async def test_failures_are_retried_with_backoff_then_given_up(
    platform: Platform, client: httpx.AsyncClient, receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = await person(platform, "miki", "admin")
    someone = await person(platform, "miki")
    await register(client, admin, receiver, topics=[])

    receiver.answers = [500, 503]  # then 204
    await message_to(platform, someone.id)
    await run_jobs(platform)
    assert [p["answered"] for p in receiver.posts()] == [500, 503, 204]
    [done] = await deliveries(platform, "miki")
    assert (done.status, done.attempts) == ("sent", 3)

    # Backoff: the next attempt waits retry_seconds x 2^(attempt-1), and is queued through the outbox for then.
    monkeypatch.setenv("TSUNAGU_NOTIFY_RETRY_SECONDS", "60")
    receiver.answers = [502, 502, 502]
    await message_to(platform, someone.id)
    before = utcnow()
    await run_jobs(platform)
    waiting = next(d for d in await deliveries(platform, "miki") if d.status == "retrying")
    assert waiting.next_attempt_at is not None
    assert timedelta(seconds=59) <= waiting.next_attempt_at - before <= timedelta(seconds=62)
    async with platform.sessions.platform() as session:
        queued = await session.scalar(
            select(OutboxMessage).where(OutboxMessage.key == f"notification-delivery:{waiting.id}:2")
        )
    assert queued is not None and queued.not_before == waiting.next_attempt_at
    await run_jobs(platform, until=utcnow() + timedelta(seconds=61))
    second_wait = next(d for d in await deliveries(platform, "miki") if d.id == waiting.id)
    assert second_wait.status == "retrying"
    assert second_wait.next_attempt_at is not None
    assert second_wait.next_attempt_at - utcnow() > timedelta(seconds=115)  # doubled
    await run_jobs(platform, until=utcnow() + timedelta(seconds=121))
    failed = next(d for d in await deliveries(platform, "miki") if d.id == waiting.id)
    assert (failed.status, failed.attempts, failed.last_error) == ("failed", 3, "webhook answered HTTP 502")
    assert [p["answered"] for p in receiver.posts()] == [502, 502, 502]


async def test_a_removed_endpoint_gets_nothing_more(
    platform: Platform, client: httpx.AsyncClient, receiver: WebhookReceiver
) -> None:
    admin = await person(platform, "miki", "admin")
    someone = await person(platform, "miki")
    created = await register(client, admin, receiver)
    await message_to(platform, someone.id)
    response = await client.delete(
        f"/m/miki/notifications/webhooks/{created['endpoint']['id']}", headers=admin.headers
    )
    assert response.status_code == 204
    await run_jobs(platform)
    assert receiver.posts() == []
    [skipped] = await deliveries(platform, "miki")
    assert (skipped.status, skipped.last_error) == ("skipped", "the webhook endpoint was removed")
    async with platform.sessions.tenant(platform.municipality("miki").id) as session:
        assert await session.scalar(select(Delivery.status)) == "skipped"
