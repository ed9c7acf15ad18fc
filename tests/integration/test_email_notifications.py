"""Email against a real SMTP server (aiosmtpd, started here): what arrives, once per delivery; the one window where
a repeat is possible, recognisable by its Message-ID; refusals and outages."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from core.audit import AuditEvent
from core.db.base import utcnow
from core.jobs import JobContext
from core.notifications import delivery as delivery_module
from core.notifications import notify
from core.notifications.models import Delivery
from core.notifications.sender import set_email_from
from core.platform import Platform
from tests.notification_support import JOBS, MailSink, deliveries, person, run_jobs, smtp_server
from tests.processes import free_port


@pytest.fixture
def smtp(monkeypatch: pytest.MonkeyPatch) -> Iterator[MailSink]:
    monkeypatch.setenv("TSUNAGU_NOTIFY_RETRY_SECONDS", "0")
    monkeypatch.setenv("TSUNAGU_NOTIFY_MAX_ATTEMPTS", "3")
    with smtp_server(monkeypatch) as sink:
        yield sink


async def mail_to(platform: Platform, address: str, *, locale: str = "ja") -> uuid.UUID:
    """Notify a new person with this address in miki; returns the email delivery's id."""
    someone = await person(platform, "miki", email_address=address, locale=locale)
    async with platform.sessions.tenant(platform.municipality("miki").id) as session:
        await notify(
            session,
            template="core.message",
            to=[someone.id],
            context={
                "subject": "【三木町】予約が確定しました",
                "body": "3月1日 10:00 体育館\nご利用ください。",
            },
        )
    [email] = [
        d for d in await deliveries(platform, "miki") if d.channel == "email" and d.status == "pending"
    ]
    return email.id


async def delivery(platform: Platform, delivery_id: uuid.UUID) -> Delivery:
    return next(d for d in await deliveries(platform, "miki") if d.id == delivery_id)


async def run_once(platform: Platform, delivery_id: uuid.UUID) -> None:
    """The job run as a redelivered message runs it."""
    ctx = JobContext(
        platform, platform.municipality("miki"), "core", job="core.deliver_notification", message_key="x"
    )
    await JOBS["core.deliver_notification"](ctx, delivery_id=str(delivery_id))


async def audited(platform: Platform, delivery_id: uuid.UUID) -> list[str]:
    async with platform.sessions.tenant(platform.municipality("miki").id) as session:
        rows = await session.scalars(
            select(AuditEvent.action)
            .where(AuditEvent.target_id == str(delivery_id))
            .order_by(AuditEvent.recorded_at)
        )
        return list(rows)


async def test_the_message_arrives_with_japanese_encoded_and_a_stable_message_id(
    platform: Platform, smtp: MailSink
) -> None:
    delivery_id = await mail_to(platform, "hanako@example.jp")
    await run_jobs(platform)

    [(envelope_to, message)] = smtp.received
    assert envelope_to == ["hanako@example.jp"]
    assert message["To"] == "hanako@example.jp"
    assert message["Subject"] == "【三木町】予約が確定しました"
    assert b"\r\nSubject: =?utf-8?" in smtp.raw[0]  # RFC 2047: any mail server and client reads it
    assert message["From"].addresses[0].display_name == "三木町"
    assert message["From"].addresses[0].addr_spec == "noreply@tsunagu.example.jp"
    assert message["Message-ID"] == f"<{delivery_id}@tsunagu.example.jp>"
    assert message.get_content().splitlines() == ["3月1日 10:00 体育館", "ご利用ください。"]
    sent = await delivery(platform, delivery_id)
    assert (sent.status, sent.attempts) == ("sent", 1)
    assert await audited(platform, delivery_id) == ["core.notification_delivered"]

    # Redelivered after it was recorded as sent: nothing more is sent.
    await run_once(platform, delivery_id)
    assert len(smtp.received) == 1

    # The municipality's own sender address.
    async with platform.sessions.tenant(platform.municipality("miki").id) as session:
        await set_email_from(session, "三木町役場 <info@town.miki.lg.jp>", actor="cli")
    second = await mail_to(platform, "taro@example.jp", locale="en")
    await run_jobs(platform)
    message = smtp.received[-1][1]
    assert str(message["From"]) == "三木町役場 <info@town.miki.lg.jp>"
    assert message["Message-ID"] == f"<{second}@town.miki.lg.jp>"


async def test_a_worker_killed_between_sending_and_recording_repeats_it_with_the_same_message_id(
    platform: Platform, smtp: MailSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    delivery_id = await mail_to(platform, "hanako@example.jp")

    class Killed(BaseException):
        pass

    async def die(*args: object, **kwargs: object) -> str:
        raise Killed

    with monkeypatch.context() as patch:
        patch.setattr(delivery_module, "_record", die)
        with pytest.raises(Killed):
            await run_jobs(platform)
    assert len(smtp.received) == 1
    held = await delivery(platform, delivery_id)
    assert held.status == "pending" and held.claimed_until is not None

    # The broker redelivers at once: the claim holds, so nothing is sent while it might still be in progress.
    await run_once(platform, delivery_id)
    assert len(smtp.received) == 1
    # When the claim has run out (as if the clock moved on), the look the redelivery queued for that moment
    # sends it again: with the same Message-ID, for mail software to recognise.
    async with platform.sessions.tenant(platform.municipality("miki").id) as session:
        await session.execute(update(Delivery).values(claimed_until=utcnow() - timedelta(seconds=1)))
    assert await run_jobs(platform, until=utcnow() + delivery_module.LEASE + timedelta(seconds=1)) == 1
    assert [m["Message-ID"] for _, m in smtp.received] == [f"<{delivery_id}@tsunagu.example.jp>"] * 2
    assert (await delivery(platform, delivery_id)).status == "sent"


async def test_a_refused_address_fails_at_once_and_an_unreachable_server_is_retried_then_given_up(
    platform: Platform, smtp: MailSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    smtp.refuse = "550 5.1.1 no such mailbox"
    refused = await mail_to(platform, "nobody@example.jp")
    await run_jobs(platform)
    failed = await delivery(platform, refused)
    assert (failed.status, failed.attempts) == ("failed", 1)
    assert failed.last_error == "SMTP server refused the recipient (550)"
    assert await audited(platform, refused) == ["core.notification_delivery_failed"]

    monkeypatch.setenv("TSUNAGU_SMTP_URL", f"smtp://127.0.0.1:{free_port()}")  # nothing listens there
    unreachable = await mail_to(platform, "hanako@example.jp")
    await run_jobs(platform)
    gave_up = await delivery(platform, unreachable)
    assert (gave_up.status, gave_up.attempts) == ("failed", 3)
    assert gave_up.last_error == "SMTP failed: ConnectionRefusedError"
    assert await audited(platform, unreachable) == [
        "core.notification_delivery_retrying",
        "core.notification_delivery_retrying",
        "core.notification_delivery_failed",
    ]
    assert smtp.received == []
