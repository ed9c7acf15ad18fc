"""Notifications as people and staff see them: the inbox in each person's language, idempotent queueing in the
caller's transaction, preferences, topic subscriptions and staff sending to a topic, problem+json for bad input,
and every change in the audit log. On SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import func, select

from core.app import create_app
from core.audit import AuditEvent
from core.exceptions import InvalidInput
from core.notifications import TemplateError, notify
from core.notifications.models import Delivery, Notification
from core.platform import Platform, create_platform
from core.tenancy import service
from core.tenancy.manifest import load_manifests
from tests import conftest
from tests.asgi import lifespan_client
from tests.notification_channel_plugin import PostcardPlugin
from tests.notification_support import Person, deliveries, person, run_jobs

PROBLEM = "application/problem+json"


@pytest.fixture
async def notifying(database_url: str) -> AsyncIterator[Platform]:
    """The eight municipalities, with the ``postcard`` channel plugin loaded and enabled in miki only."""
    platform = create_platform(conftest.test_settings(database_url), extra_plugins=[PostcardPlugin()])
    await platform.refresh(force=True)
    manifests = conftest.MANIFESTS
    await service.apply_manifests(platform, load_manifests(manifests), [str(p) for p in manifests])
    await service.set_plugin_enabled(platform, "miki", "postcard", True)
    await platform.refresh()
    try:
        yield platform
    finally:
        await platform.close()


@pytest.fixture
async def http(notifying: Platform) -> AsyncIterator[httpx.AsyncClient]:
    async with lifespan_client(create_app(platform=notifying, run_jobs_in_process=False)) as client:
        yield client


async def send(platform: Platform, slug: str, to: list[uuid.UUID], **kw: object) -> list[uuid.UUID]:
    kw.setdefault("template", "postcard.hello")
    kw.setdefault("context", {"name": "花子", "town": "三木町"})
    async with platform.sessions.tenant(platform.municipality(slug).id) as session:
        return await notify(session, to=to, **kw)  # type: ignore[arg-type]


async def actions(platform: Platform, slug: str) -> list[str]:
    async with platform.sessions.tenant(platform.municipality(slug).id) as session:
        return list(await session.scalars(select(AuditEvent.action).order_by(AuditEvent.recorded_at)))


def problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    return response.json()


async def inbox(http: httpx.AsyncClient, who: Person, **params: object) -> dict[str, object]:
    response = await http.get(f"/m/{who.slug}/notifications/inbox", headers=who.headers, params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def test_each_person_reads_the_message_in_their_language_and_marks_it_read(
    notifying: Platform, http: httpx.AsyncClient
) -> None:
    hanako = await person(notifying, "miki", locale="ja")
    alice = await person(notifying, "miki", locale="en")
    await send(notifying, "miki", [hanako.id, alice.id])

    [ja] = (await inbox(http, hanako))["items"]
    assert ja["subject"] == "三木町からのお知らせ：花子様"
    assert ja["body"] == "花子様\n\n三木町からはがきが届きました。"
    page = await inbox(http, alice)
    assert [i["subject"] for i in page["items"]] == ["News from 三木町 for 花子"]
    assert page["unread"] == 1

    count = await http.get("/m/miki/notifications/inbox/unread-count", headers=hanako.headers)
    assert count.json() == {"unread": 1}
    read = await http.post(f"/m/miki/notifications/inbox/{ja['id']}/read", headers=hanako.headers)
    assert read.status_code == 200 and read.json()["read_at"] is not None
    assert (await inbox(http, hanako))["unread"] == 0
    assert (await inbox(http, hanako, unread_only=True))["items"] == []
    # Someone else's notification is not found, whatever its id.
    problem(await http.post(f"/m/miki/notifications/inbox/{ja['id']}/read", headers=alice.headers), 404)
    marked = await http.post("/m/miki/notifications/inbox/read-all", headers=alice.headers)
    assert marked.json() == {"marked": 1}
    assert (await inbox(http, alice))["unread"] == 0
    assert (await http.get("/m/miki/notifications/inbox")).status_code == 401

    assert {"core.notification_queued", "core.notification_read", "core.notifications_read"} <= set(
        await actions(notifying, "miki")
    )


async def test_the_inbox_pages_newest_first(notifying: Platform, http: httpx.AsyncClient) -> None:
    hanako = await person(notifying, "miki")
    for n in range(5):
        await send(notifying, "miki", [hanako.id], context={"name": str(n), "town": "三木町"})
    first = await inbox(http, hanako, limit=2)
    second = await inbox(http, hanako, limit=2, cursor=first["next_cursor"])
    third = await inbox(http, hanako, limit=2, cursor=second["next_cursor"])
    names = [i["subject"] for page in (first, second, third) for i in page["items"]]  # type: ignore[attr-defined]
    assert names == [f"三木町からのお知らせ：{n}様" for n in (4, 3, 2, 1, 0)]
    assert third["next_cursor"] is None
    problem(await http.get("/m/miki/notifications/inbox", headers=hanako.headers, params={"limit": 0}), 422)
    problem(
        await http.get("/m/miki/notifications/inbox", headers=hanako.headers, params={"cursor": "x"}), 422
    )


async def test_a_key_queues_once_and_a_rollback_queues_nothing(notifying: Platform) -> None:
    hanako = await person(notifying, "miki")
    first = await send(notifying, "miki", [hanako.id], key="reservation:42:confirmed")
    again = await send(notifying, "miki", [hanako.id], key="reservation:42:confirmed")
    assert len(first) == 1 and again == []

    class Undo(Exception):
        pass

    with pytest.raises(Undo):
        async with notifying.sessions.tenant(notifying.municipality("miki").id) as session:
            await notify(
                session, template="postcard.hello", to=[hanako.id], context={"name": "x", "town": "y"}
            )
            raise Undo
    async with notifying.sessions.tenant(notifying.municipality("miki").id) as session:
        assert await session.scalar(select(func.count()).select_from(Notification)) == 1
        assert {d.channel for d in await session.scalars(select(Delivery))} == {"postcard"}


async def test_a_missing_variable_fails_the_callers_transaction_naming_it(notifying: Platform) -> None:
    hanako = await person(notifying, "miki")
    with pytest.raises(TemplateError, match=r"postcard\.hello \[ja\].*'town' is undefined"):
        await send(notifying, "miki", [hanako.id], context={"name": "花子"})
    with pytest.raises(TemplateError, match="no notification template named 'postcard.missing'"):
        await send(notifying, "miki", [hanako.id], template="postcard.missing")
    with pytest.raises(InvalidInput, match="channels: unknown fax"):
        await send(notifying, "miki", [hanako.id], channels=["fax"])
    with pytest.raises(InvalidInput, match="JSON"):
        await send(notifying, "miki", [hanako.id], context={"when": object()})
    assert await deliveries(notifying, "miki") == []
    assert "core.notification_queued" not in await actions(notifying, "miki")


async def test_channels_follow_each_persons_preferences(
    notifying: Platform, http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TSUNAGU_SMTP_URL", "smtp://127.0.0.1:25")
    with_mail = await person(notifying, "miki", email_address="hanako@example.jp")
    without_mail = await person(notifying, "miki")
    await send(notifying, "miki", [with_mail.id, without_mail.id])
    assert sorted(d.channel for d in await deliveries(notifying, "miki")) == ["email", "postcard", "postcard"]

    shown = await http.get("/m/miki/notifications/preferences", headers=with_mail.headers)
    assert [(c["channel"], c["enabled"], c["required"]) for c in shown.json()["channels"]] == [
        ("inbox", True, True),
        ("email", True, False),
        ("postcard", True, False),
    ]
    changed = await http.put(
        "/m/miki/notifications/preferences",
        headers=with_mail.headers,
        json={"channels": {"email": False, "postcard": False}},
    )
    assert changed.status_code == 200, changed.text
    assert [c["enabled"] for c in changed.json()["channels"]] == [True, False, False]
    before = len(await deliveries(notifying, "miki"))
    await send(notifying, "miki", [with_mail.id])
    assert len(await deliveries(notifying, "miki")) == before  # inbox only
    assert "core.notification_preferences_changed" in await actions(notifying, "miki")

    # Elsewhere the person has chosen nothing, and the postcard plugin is not enabled: no postcard there.
    at_sanuki = await person(notifying, "sanuki", account_id=with_mail.id)
    shown = await http.get("/m/sanuki/notifications/preferences", headers=at_sanuki.headers)
    assert [(c["channel"], c["enabled"]) for c in shown.json()["channels"]] == [
        ("inbox", True),
        ("email", True),
    ]

    for body in ({"channels": {"inbox": False}}, {"channels": {"fax": True}}):
        problem(
            await http.put("/m/miki/notifications/preferences", headers=with_mail.headers, json=body), 422
        )
    problem(
        await http.put("/m/miki/notifications/preferences", headers=with_mail.headers, json={"chanels": {}}),
        400,
    )

    # channels= narrows what one message uses; leaving out the inbox keeps it out of the inbox.
    narrowed = await send(notifying, "miki", [without_mail.id], channels=["postcard"])
    async with notifying.sessions.tenant(notifying.municipality("miki").id) as session:
        row = await session.scalar(select(Notification).where(Notification.id == narrowed[0]))
        assert row is not None and row.in_inbox is False
    assert len((await inbox(http, without_mail))["items"]) == 1


async def test_staff_send_to_a_topic_reaches_its_subscribers_only(
    notifying: Platform, http: httpx.AsyncClient
) -> None:
    subscriber = await person(notifying, "miki", locale="en")
    bystander = await person(notifying, "miki")
    staff = await person(notifying, "miki", "staff")

    listed = await http.get("/m/miki/notifications/topics", headers=subscriber.headers)
    assert [t["name"] for t in listed.json()] == ["bousai", "kosodate", "event", "general"]
    response = await http.put("/m/miki/notifications/subscriptions/bousai", headers=subscriber.headers)
    assert response.json() == {
        "name": "bousai",
        "title": "防災",
        "title_en": "Disaster prevention",
        "core": True,
        "subscribed": True,
    }
    assert (
        await http.put("/m/miki/notifications/subscriptions/bousai", headers=subscriber.headers)
    ).status_code == 200
    problem(await http.put("/m/miki/notifications/subscriptions/nothing", headers=subscriber.headers), 404)

    message = {
        "subject": "避難所を開設しました",
        "body": "三木町文化交流プラザを開設しました。",
        "key": "evac-1",
    }
    problem(
        await http.post("/m/miki/notifications/topics/bousai/send", headers=bystander.headers, json=message),
        403,
    )
    sent = await http.post("/m/miki/notifications/topics/bousai/send", headers=staff.headers, json=message)
    assert sent.status_code == 202, sent.text
    assert sent.json()["status"] == "queued"
    again = await http.post("/m/miki/notifications/topics/bousai/send", headers=staff.headers, json=message)
    assert again.json()["id"] == sent.json()["id"]  # the same key: the same send, nothing more

    await run_jobs(notifying)
    [item] = (await inbox(http, subscriber))["items"]
    assert (item["subject"], item["topic"]) == ("避難所を開設しました", "bousai")
    assert (await inbox(http, bystander))["items"] == []
    status = await http.get(f"/m/miki/notifications/sends/{sent.json()['id']}", headers=staff.headers)
    assert (status.json()["status"], status.json()["recipients"]) == ("done", 1)

    assert (
        await http.delete("/m/miki/notifications/subscriptions/bousai", headers=subscriber.headers)
    ).status_code == 204
    listed = await http.get("/m/miki/notifications/topics", headers=subscriber.headers)
    assert not any(t["subscribed"] for t in listed.json())
    assert {
        "core.topic_subscribed",
        "core.topic_send_queued",
        "core.topic_send_completed",
        "core.topic_unsubscribed",
    } <= set(await actions(notifying, "miki"))


async def test_bad_send_requests_are_refused_and_change_nothing(
    notifying: Platform, http: httpx.AsyncClient
) -> None:
    staff = await person(notifying, "miki", "staff")
    url = "/m/miki/notifications/topics/bousai/send"
    both = {"template": "postcard.hello", "subject": "x", "body": "y"}
    assert "not both" in problem(await http.post(url, headers=staff.headers, json=both), 422)["detail"]  # type: ignore[operator]
    problem(await http.post(url, headers=staff.headers, json={"subject": "x"}), 422)
    problem(
        await http.post(url, headers=staff.headers, json={"template": "postcard.hello", "context": {}}), 422
    )
    problem(
        await http.post(
            "/m/miki/notifications/topics/nothing/send",
            headers=staff.headers,
            json={"subject": "x", "body": "y"},
        ),
        404,
    )
    problem(
        await http.post(
            url,
            headers=staff.headers,
            content=b"{not json",
        ),
        400,
    )
    assert await deliveries(notifying, "miki") == []
    assert "core.topic_send_queued" not in await actions(notifying, "miki")


async def test_administrators_add_and_remove_their_own_topics(
    notifying: Platform, http: httpx.AsyncClient
) -> None:
    admin = await person(notifying, "miki", "admin")
    resident = await person(notifying, "miki")
    gomi = {"name": "gomi", "title": "ごみ収集", "title_en": "Waste collection"}
    problem(await http.post("/m/miki/notifications/topics", headers=resident.headers, json=gomi), 403)
    added = await http.post("/m/miki/notifications/topics", headers=admin.headers, json=gomi)
    assert added.status_code == 201, added.text
    problem(await http.post("/m/miki/notifications/topics", headers=admin.headers, json=gomi), 409)
    problem(
        await http.post(
            "/m/miki/notifications/topics", headers=admin.headers, json={**gomi, "name": "Gomi!"}
        ),
        422,
    )
    assert (
        await http.put("/m/miki/notifications/subscriptions/gomi", headers=resident.headers)
    ).status_code == 200
    # Another town does not offer it.
    at_sanuki = await person(notifying, "sanuki", account_id=resident.id)
    problem(await http.put("/m/sanuki/notifications/subscriptions/gomi", headers=at_sanuki.headers), 404)

    problem(await http.delete("/m/miki/notifications/topics/bousai", headers=admin.headers), 422)
    assert (await http.delete("/m/miki/notifications/topics/gomi", headers=admin.headers)).status_code == 204
    listed = await http.get("/m/miki/notifications/topics", headers=resident.headers)
    assert "gomi" not in [t["name"] for t in listed.json()]
    assert {"core.topic_added", "core.topic_removed"} <= set(await actions(notifying, "miki"))
