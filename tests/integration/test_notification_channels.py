"""Plugin channels and plugin templates, through the hooks ``register_notification_channels`` and
``register_notification_templates``, with the throwaway ``postcard`` plugin (enabled in miki only)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from core import Plugin, PluginMeta, Title, hookimpl
from core.audit import AuditEvent
from core.notifications import Channel, notify, notify_topic
from core.notifications.models import Notification, TopicSend
from core.notifications.registry import contributions
from core.notifications.topics import subscribe
from core.platform import Platform, create_platform
from core.tenancy import service
from core.tenancy.manifest import load_manifests
from tests import conftest
from tests.notification_channel_plugin import PostcardPlugin
from tests.notification_support import deliveries, person, run_jobs

CONTEXT = {"name": "花子", "town": "三木町"}


class Clumsy(Plugin):
    """Offers channels that cannot be used (a taken name, not a Channel) and a template hook that raises."""

    meta = PluginMeta(name="clumsy", version="1.0.0", title=Title(ja="不器用", en="Clumsy"))

    @hookimpl
    def register_notification_channels(self) -> list[Any]:
        class Impostor(Channel):
            name = "email"
            title = Title(ja="偽", en="Impostor")

        return [Impostor(), "fax"]

    @hookimpl
    def register_notification_templates(self) -> list[Path]:
        raise RuntimeError("no templates today")


@pytest.fixture
def postcard() -> PostcardPlugin:
    return PostcardPlugin()


async def make_platform(database_url: str, *plugins: Plugin, **settings: Any) -> Platform:
    platform = create_platform(conftest.test_settings(database_url, **settings), extra_plugins=plugins)
    await platform.refresh(force=True)
    manifests = conftest.MANIFESTS
    await service.apply_manifests(platform, load_manifests(manifests), [str(p) for p in manifests])
    await service.set_plugin_enabled(platform, "miki", "postcard", True)
    await platform.refresh()
    return platform


@pytest.fixture
async def with_postcard(database_url: str, postcard: PostcardPlugin) -> AsyncIterator[Platform]:
    platform = await make_platform(database_url, postcard, Clumsy())
    try:
        yield platform
    finally:
        await platform.close()


async def send(platform: Platform, slug: str, to: list[uuid.UUID]) -> None:
    async with platform.sessions.tenant(platform.municipality(slug).id) as session:
        await notify(session, template="postcard.hello", to=to, context=CONTEXT)


async def test_hook_register_notification_channels(
    with_postcard: Platform, postcard: PostcardPlugin, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TSUNAGU_NOTIFY_RETRY_SECONDS", "0")
    platform = with_postcard
    assert set(contributions(platform).channels) == {"postcard"}  # the clumsy plugin's offers are left out
    hanako = await person(platform, "miki", locale="en")
    await person(platform, "sanuki", account_id=hanako.id)
    await send(platform, "miki", [hanako.id])
    await send(platform, "sanuki", [hanako.id])  # postcard is not enabled there
    await run_jobs(platform)

    [(where, message)] = postcard.channel.sent
    [delivery] = await deliveries(platform, "miki")
    assert where == "miki"
    assert (message.municipality, message.account_id, message.locale) == ("miki", hanako.id, "en")
    assert (message.subject, message.delivery_id, message.attempt) == (
        "News from 三木町 for 花子",
        delivery.id,
        1,
    )
    assert delivery.status == "sent"
    assert await deliveries(platform, "sanuki") == []

    # A person the channel cannot reach is skipped; a failing channel is retried.
    unreachable = await person(platform, "miki")
    postcard.channel.no_address.add(unreachable.id)
    postcard.channel.failures = 1
    await send(platform, "miki", [unreachable.id, hanako.id])
    await run_jobs(platform)
    outcome = {(d.status, d.attempts, d.last_error) for d in (await deliveries(platform, "miki"))[1:]}
    assert outcome == {("skipped", 1, "no postal address on file"), ("sent", 2, None)}

    # Switched off for the municipality after queueing: what is still pending goes nowhere.
    await send(platform, "miki", [hanako.id])
    await service.set_plugin_enabled(platform, "miki", "postcard", False)
    await platform.refresh()
    await run_jobs(platform)
    last = (await deliveries(platform, "miki"))[-1]
    assert (last.status, last.last_error) == ("skipped", "channel postcard is not available here any more")
    assert len(postcard.channel.sent) == 2


async def test_hook_register_notification_templates(database_url: str, tmp_path: Path) -> None:
    overrides = tmp_path / "municipalities" / "miki" / "templates"
    overrides.mkdir(parents=True)
    (overrides / "postcard.hello.toml").write_text(
        '[ja]\nsubject = "三木町より{{ name }}さんへ"\nbody = "はがきです"\n', encoding="utf-8"
    )
    platform = await make_platform(
        database_url, PostcardPlugin(), Clumsy(), municipalities_dir=str(tmp_path / "municipalities")
    )
    try:
        ja = await person(platform, "miki")
        en = await person(platform, "miki", locale="en")
        await person(platform, "sanuki", account_id=ja.id)
        async with platform.sessions.tenant(platform.municipality("miki").id) as session:
            await notify(session, template="postcard.hello", to=[ja.id, en.id], context=CONTEXT)
        async with platform.sessions.tenant(platform.municipality("sanuki").id) as session:
            await notify(session, template="postcard.hello", to=[ja.id], context=CONTEXT)
        subjects = {}
        for slug in ("miki", "sanuki"):
            async with platform.sessions.tenant(platform.municipality(slug).id) as session:
                for row in await session.scalars(select(Notification)):
                    subjects[(slug, row.locale)] = row.subject
        assert subjects == {
            ("miki", "ja"): "三木町より花子さんへ",  # miki's own Japanese
            ("miki", "en"): "News from 三木町 for 花子",  # no English override: the plugin's
            ("sanuki", "ja"): "三木町からのお知らせ：花子様",
        }

        # An override edited after a topic send was queued, so that it no longer renders: the send fails
        # (audited) rather than being retried for ever.
        miki = platform.municipality("miki")
        async with platform.sessions.tenant(miki.id) as session:
            await subscribe(session, ja.id, "event")
            send_id = await notify_topic(session, topic="event", template="postcard.hello", context=CONTEXT)
        (overrides / "postcard.hello.toml").write_text(
            '[ja]\nsubject = "{{ date }}"\nbody = "x"\n', encoding="utf-8"
        )
        await run_jobs(platform)
        async with platform.sessions.tenant(miki.id) as session:
            send = await session.scalar(select(TopicSend).where(TopicSend.id == send_id))
            assert send is not None and (send.status, send.recipients) == ("failed", 0)
            failed = await session.scalar(
                select(AuditEvent.action)
                .where(AuditEvent.target_id == str(send_id))
                .order_by(AuditEvent.recorded_at.desc())
            )
            assert failed == "core.topic_send_failed"
    finally:
        await platform.close()
