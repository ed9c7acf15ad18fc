"""``tsunagu notify``: templates and where they come from, checking them, sending to a topic, topics, webhooks,
the sender address and deliveries — run in-process against SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from core.audit import AuditEvent
from core.notifications.models import Notification
from core.notifications.topics import subscribe
from core.platform import Platform, create_platform
from tests.cli_runner import Run, cli_runner
from tests.conftest import MANIFESTS, TEST_SECRET_KEY
from tests.conftest import test_settings as settings_for
from tests.integration.test_cli import assert_one_line_error
from tests.notification_support import person, run_jobs


@pytest.fixture
def towns(tmp_path: Path) -> Path:
    """A municipalities folder where miki overrides the Japanese of ``core.message``."""
    folder = tmp_path / "municipalities" / "miki" / "templates"
    folder.mkdir(parents=True)
    (folder / "core.message.toml").write_text(
        '[ja]\nsubject = "【三木町】{{ subject }}"\nbody = "{{ body }}\\n\\n三木町役場"\n', encoding="utf-8"
    )
    return tmp_path / "municipalities"


@pytest.fixture
def run(
    database_url: str, towns: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[Run]:
    monkeypatch.setenv("TSUNAGU_DATABASE_URL", database_url)
    monkeypatch.setenv("TSUNAGU_SECRET_KEY", TEST_SECRET_KEY)
    monkeypatch.setenv("TSUNAGU_MUNICIPALITIES_DIR", str(towns))
    for variable in ("TSUNAGU_ENV", "TSUNAGU_LOG_LEVEL", "TSUNAGU_BROKER_URL", "TSUNAGU_SMTP_URL"):
        monkeypatch.delenv(variable, raising=False)
    with cli_runner(capsys) as runner:
        assert runner("municipality", "apply", *MANIFESTS).code == 0
        yield runner


def on_platform(database_url: str, towns: Path, work):  # type: ignore[no-untyped-def]
    async def main():  # type: ignore[no-untyped-def]
        platform = create_platform(settings_for(database_url, municipalities_dir=str(towns)))
        try:
            await platform.refresh(force=True)
            return await work(platform)
        finally:
            await platform.close()

    return asyncio.run(main())


def test_templates_say_where_each_language_comes_from_and_check_renders_them(run: Run, towns: Path) -> None:
    listed = {row["name"]: row for row in run("notify", "templates", "-m", "miki", "--json").json()}
    assert (listed["core.message"]["ja"], listed["core.message"]["en"]) == ("municipality", "core")
    sanuki = {row["name"]: row for row in run("notify", "templates", "-m", "sanuki", "--json").json()}
    assert (sanuki["core.message"]["ja"], sanuki["core.message"]["en"]) == ("core", "core")

    ok = run("notify", "check")
    assert ok.code == 0, ok.err
    assert ok.out.endswith("template(s) render in ja and en with their sample context\n")

    (towns / "miki" / "templates" / "core.message.toml").write_text(
        '[ja]\nsubject = "{{ subjekt }}"\nbody = "{{ body }}"\n', encoding="utf-8"
    )
    bad = run("notify", "check", "-m", "miki")
    assert bad.code == 2 and bad.out == ""
    problem, summary = bad.err.splitlines()
    assert problem.startswith("miki: template core.message [ja] (") and "'subjekt' is undefined" in problem
    assert summary.startswith("error: 1 template problem(s) in ") and summary.endswith(" template(s) checked")
    assert run("notify", "check").code == 2  # every municipality folder is checked by default
    assert_one_line_error(run("notify", "templates", "-m", "nowhere"), "unknown municipality 'nowhere'")


def test_send_to_a_topic_from_the_command_line(run: Run, database_url: str, towns: Path) -> None:
    async def subscriber(platform: Platform) -> uuid.UUID:
        someone = await person(platform, "miki")
        async with platform.sessions.tenant(platform.municipality("miki").id) as session:
            await subscribe(session, someone.id, "bousai")
        return someone.id

    someone = on_platform(database_url, towns, subscriber)
    sent = run(
        "notify", "send", "-m", "miki", "--topic", "bousai", "--subject", "避難指示", "--body", "高台へ"
    )
    assert sent.code == 0, sent.err
    assert sent.out.startswith("miki: queued topic send ") and "to 1 subscriber(s) of bousai" in sent.out

    async def delivered(platform: Platform) -> list[tuple[str, str]]:
        await run_jobs(platform)
        async with platform.sessions.tenant(platform.municipality("miki").id) as session:
            rows = await session.scalars(select(Notification).where(Notification.account_id == someone))
            return [(n.subject, n.body) for n in rows]

    assert on_platform(database_url, towns, delivered) == [("【三木町】避難指示", "高台へ\n\n三木町役場")]

    assert_one_line_error(
        run(
            "notify",
            "send",
            "-m",
            "miki",
            "--topic",
            "bousai",
            "--template",
            "core.message",
            "--subject",
            "x",
        ),
        "not both",
    )
    assert_one_line_error(
        run(
            "notify",
            "send",
            "-m",
            "miki",
            "--topic",
            "bousai",
            "--template",
            "core.message",
            "--context",
            "[1]",
        ),
        "--context must be a JSON object",
    )
    assert_one_line_error(
        run("notify", "send", "-m", "miki", "--topic", "gomi", "--subject", "x", "--body", "y"),
        "no topic 'gomi'",
    )


def test_topics_webhooks_sender_and_deliveries(run: Run, database_url: str, towns: Path) -> None:
    assert (
        run("notify", "topic", "add", "-m", "miki", "gomi", "--title", "ごみ収集", "--title-en", "Waste").code
        == 0
    )
    listed = run("notify", "topic", "list", "-m", "miki", "--json").json()
    assert [(t["name"], t["core"], t["subscribers"]) for t in listed][-1] == ("gomi", False, 0)
    assert_one_line_error(
        run("notify", "topic", "add", "-m", "miki", "gomi", "--title", "x", "--title-en", "x"),
        "topic 'gomi' exists already",
        code=1,
    )
    assert (
        run("notify", "topic", "remove", "-m", "miki", "gomi").out
        == "miki: topic gomi removed, with 0 subscription(s)\n"
    )

    added = run(
        "notify",
        "webhook",
        "add",
        "-m",
        "miki",
        "--name",
        "防災無線",
        "--url",
        "https://bousai.example.jp/in",
        "--topic",
        "bousai",
        "--json",
    ).json()
    assert added["secret"].startswith("whsec_")
    listed = run("notify", "webhook", "list", "-m", "miki", "--json").json()
    assert listed == [added["endpoint"]]
    assert run("notify", "webhook", "list", "-m", "sanuki", "--json").json() == []
    assert_one_line_error(
        run(
            "notify", "webhook", "add", "-m", "miki", "--name", "x", "--url", "ftp://x/", "--topic", "bousai"
        ),
        "url must be an http:// or https:// URL",
    )
    assert run("notify", "webhook", "remove", "-m", "miki", added["endpoint"]["id"]).code == 0
    assert_one_line_error(
        run("notify", "webhook", "remove", "-m", "miki", added["endpoint"]["id"]), "no webhook endpoint"
    )

    assert (
        run("notify", "sender", "-m", "miki").out
        == "miki sends email as the deployment's TSUNAGU_SMTP_FROM, named after the municipality\n"
    )
    changed = run("notify", "sender", "-m", "miki", "--email-from", "三木町 <info@town.miki.lg.jp>")
    assert changed.out == "miki now sends email as 三木町 <info@town.miki.lg.jp>\n"
    assert_one_line_error(
        run("notify", "sender", "-m", "miki", "--email-from", "nobody"),
        "email_from must be one email address",
    )
    assert run("notify", "deliveries", "-m", "miki", "--json").json() == []

    async def actions(platform: Platform) -> set[str]:
        async with platform.sessions.tenant(platform.municipality("miki").id) as session:
            return set(await session.scalars(select(AuditEvent.action).where(AuditEvent.actor == "cli")))

    assert {
        "core.topic_added",
        "core.topic_removed",
        "core.webhook_registered",
        "core.webhook_removed",
        "core.notification_sender_set",
    } <= on_platform(database_url, towns, actions)
