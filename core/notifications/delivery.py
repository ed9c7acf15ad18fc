"""Delivering one delivery: claim it, send it outside any transaction, record the outcome.

The job ``core.deliver_notification`` may run more than once for one delivery (a worker killed before the
broker heard it was done, a retry). Each run:

1. claims the delivery in a short transaction: nothing to do if it is ``sent``, ``skipped`` or ``failed``;
   if another run holds it (``claimed_until`` in the future), or the next attempt is not due yet and this is
   not its message, it queues a look for then and stops; otherwise it counts an attempt and holds the
   delivery for :data:`LEASE`;
2. sends (SMTP, HTTP, a plugin channel) with no transaction open;
3. records ``sent``, ``skipped`` or ``failed``, or, after a failure worth retrying, ``retrying`` with the next
   attempt's message queued through the outbox for after an exponential backoff.

So a delivery recorded as sent is never sent again, and two runs never send at once. One window remains: a
worker that dies after sending and before recording leaves the delivery claimed; when the claim runs out it is
sent again, with the same Message-ID (email) or ``Tsunagu-Delivery`` header (webhooks, plugin channels get the
same ``delivery_id``), so the receiving side can recognise the repeat.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import msgspec
import structlog
from sqlalchemy import select

from core.audit import record
from core.db.base import utcnow
from core.exceptions import ImproperlyConfigured
from core.identity.models import Account
from core.notifications.channels import EMAIL, WEBHOOK, ChannelMessage, DeliveryFailed, NoAddress
from core.notifications.config import NotificationSettings, load_notification_settings
from core.notifications.mail import build_message, send_email, sender_address
from core.notifications.models import (
    Delivery,
    Notification,
    NotificationSettingsRow,
    Preference,
    TopicSend,
    WebhookEndpoint,
)
from core.notifications.registry import channels_for, template_library
from core.notifications.sending import DELIVER_JOB, delivery_key
from core.notifications.templates import TemplateError
from core.notifications.webhooks import post, reveal_secret
from core.outbox import send_later

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from core.jobs import JobContext

log = structlog.get_logger(__name__)

LEASE = timedelta(minutes=2)
"""How long one run holds a delivery: longer than any send may take (SMTP and HTTP time out well before)."""
FINAL = frozenset({"sent", "skipped", "failed"})
ACTOR = "job:core.deliver_notification"

Send = Callable[[], Awaitable[None]]


class _Outcome(msgspec.Struct, frozen=True):
    status: str
    """``sent``, ``skipped`` or ``failure``."""
    reason: str | None = None
    permanent: bool = False


async def deliver(ctx: JobContext, delivery_id: uuid.UUID) -> str:
    """Run one attempt of a delivery, if one is due; returns the delivery's status afterwards (``busy`` when
    another run holds it, ``missing`` when there is no such delivery in the job's municipality)."""
    settings = load_notification_settings()
    claimed = await _claim(ctx, delivery_id, settings)
    if isinstance(claimed, str):
        return claimed
    attempt, prepared = claimed
    if isinstance(prepared, _Outcome):
        outcome = prepared
    else:
        try:
            await prepared()
            outcome = _Outcome("sent")
        except NoAddress as exc:
            outcome = _Outcome("skipped", exc.reason)
        except DeliveryFailed as exc:
            outcome = _Outcome("failure", exc.reason, exc.permanent)
        except Exception as exc:  # a channel's bug: retried like a failure, logged with its traceback
            log.exception("notification.channel_error", delivery=str(delivery_id))
            outcome = _Outcome("failure", f"unexpected {type(exc).__name__}")
    return await _record(ctx, delivery_id, attempt, outcome, settings)


async def _claim(
    ctx: JobContext, delivery_id: uuid.UUID, settings: NotificationSettings
) -> str | tuple[int, Send | _Outcome]:
    now = utcnow()
    async with ctx.session() as session:
        delivery = await session.scalar(select(Delivery).where(Delivery.id == delivery_id).with_for_update())
        if delivery is None:
            log.warning("notification.delivery_missing", delivery=str(delivery_id))
            return "missing"
        if delivery.status in FINAL:
            return delivery.status
        wait_until = _not_now(ctx, delivery, now)
        if wait_until is not None:
            await send_later(  # a look for then (its own key: each early run queues one)
                session,
                DELIVER_JOB,
                key=f"notification-delivery:{delivery_id}:after:{uuid.uuid4()}",
                not_before=wait_until,
                delivery_id=str(delivery_id),
            )
            return "busy"
        delivery.attempts += 1
        delivery.claimed_until = now + LEASE
        try:
            prepared: Send | _Outcome = await _prepare(ctx, session, delivery, settings)
        except NoAddress as exc:
            prepared = _Outcome("skipped", exc.reason)
        except DeliveryFailed as exc:
            prepared = _Outcome("failure", exc.reason, exc.permanent)
        except TemplateError as exc:  # the template changed since the message was queued
            prepared = _Outcome("failure", exc.detail, permanent=True)
        except ImproperlyConfigured as exc:  # the deployment's to fix (a changed secret): keep trying
            prepared = _Outcome("failure", exc.detail)
        return delivery.attempts, prepared


def _not_now(ctx: JobContext, delivery: Delivery, now: datetime) -> datetime | None:
    """When to look again, if this run must not attempt the delivery now: another run holds it, or the next
    attempt is not due and this is not that attempt's message (an old one, redelivered)."""
    if delivery.claimed_until is not None and delivery.claimed_until > now:
        return delivery.claimed_until
    due = delivery.next_attempt_at
    if due is not None and due > now and ctx.message_key != delivery_key(delivery.id, delivery.attempts + 1):
        return due
    return None


async def _record(
    ctx: JobContext, delivery_id: uuid.UUID, attempt: int, outcome: _Outcome, settings: NotificationSettings
) -> str:
    now = utcnow()
    async with ctx.session() as session:
        delivery = await session.scalar(select(Delivery).where(Delivery.id == delivery_id).with_for_update())
        if delivery is None or delivery.status in FINAL:  # removed, or a run whose claim outlived ours won
            return "missing" if delivery is None else delivery.status
        payload: dict[str, Any] = {"channel": delivery.channel, "attempt": attempt}
        reason = outcome.reason[:300] if outcome.reason else None
        if outcome.status == "sent":
            delivery.status, delivery.sent_at, delivery.last_error = "sent", now, None
            delivery.claimed_until = None
            action = "core.notification_delivered"
        elif outcome.status == "skipped":
            delivery.status, delivery.last_error, delivery.claimed_until = "skipped", reason, None
            action = "core.notification_delivery_skipped"
        elif outcome.permanent or attempt >= settings.max_attempts:
            delivery.status, delivery.last_error, delivery.claimed_until = "failed", reason, None
            action = "core.notification_delivery_failed"
            log.warning("notification.delivery_failed", delivery=str(delivery_id), reason=outcome.reason)
        else:
            retry_at = now + timedelta(seconds=settings.retry_delay(attempt))
            delivery.status, delivery.last_error = "retrying", reason
            delivery.next_attempt_at, delivery.claimed_until = retry_at, None
            await send_later(
                session,
                DELIVER_JOB,
                key=delivery_key(delivery_id, attempt + 1),
                not_before=retry_at,
                delivery_id=str(delivery_id),
            )
            action = "core.notification_delivery_retrying"
            payload["retry_at"] = retry_at.isoformat()
        record(
            session,
            actor=ACTOR,
            action=action,
            target_type="notification_delivery",
            target_id=delivery_id,
            payload=payload,
        )
        return delivery.status


# --- what one attempt sends --------------------------------------------------------------------------------


async def _prepare(
    ctx: JobContext, session: AsyncSession, delivery: Delivery, settings: NotificationSettings
) -> Send:
    """Everything the send needs, read in the claim's transaction. :raises DeliveryFailed: (NoAddress: skip)."""
    if delivery.channel == WEBHOOK:
        return await _prepare_webhook(ctx, session, delivery)
    notification = await session.scalar(
        select(Notification).where(Notification.id == delivery.notification_id)
    )
    if notification is None:
        raise NoAddress("the notification no longer exists")
    switched_off = await session.scalar(
        select(Preference.enabled).where(
            Preference.account_id == notification.account_id, Preference.channel == delivery.channel
        )
    )
    if switched_off is False:
        raise NoAddress(f"the person switched {delivery.channel} off")
    if delivery.channel == EMAIL:
        return await _prepare_email(ctx, session, delivery, notification, settings)
    channel = channels_for(ctx.platform, ctx.municipality).get(delivery.channel)
    if channel is None:
        raise NoAddress(f"channel {delivery.channel} is not available here any more")
    message = ChannelMessage(
        delivery_id=delivery.id,
        notification_id=notification.id,
        municipality=ctx.municipality.slug,
        account_id=notification.account_id,
        locale=notification.locale,
        template=notification.template,
        topic=notification.topic,
        subject=notification.subject,
        body=notification.body,
        attempt=delivery.attempts,
    )
    return lambda: channel.send(message, ctx)


async def _prepare_email(
    ctx: JobContext,
    session: AsyncSession,
    delivery: Delivery,
    notification: Notification,
    settings: NotificationSettings,
) -> Send:
    address = await session.scalar(select(Account.email).where(Account.id == notification.account_id))
    if not address:
        raise NoAddress("the person has no email address")
    server = settings.smtp
    if server is None:
        raise DeliveryFailed("no SMTP server configured in this process (TSUNAGU_SMTP_URL)")
    configured = await session.scalar(select(NotificationSettingsRow.email_from)) or settings.smtp_from
    message = build_message(
        delivery_id=delivery.id,
        sender=sender_address(configured, ctx.municipality.name),
        to=address,
        subject=notification.subject,
        body=notification.body,
        locale=notification.locale,
    )
    return lambda: send_email(server, message)


async def _prepare_webhook(ctx: JobContext, session: AsyncSession, delivery: Delivery) -> Send:
    endpoint = await session.scalar(select(WebhookEndpoint).where(WebhookEndpoint.id == delivery.endpoint_id))
    if endpoint is None or endpoint.removed_at is not None:
        raise NoAddress("the webhook endpoint was removed")
    if delivery.notification_id is not None:
        notification = await session.scalar(
            select(Notification).where(Notification.id == delivery.notification_id)
        )
        if notification is None:
            raise NoAddress("the notification no longer exists")
        event, data = "notification", _notification_data(notification)
    else:
        send = await session.scalar(select(TopicSend).where(TopicSend.id == delivery.topic_send_id))
        if send is None:
            raise NoAddress("the topic send no longer exists")
        event, data = "topic_send", _topic_send_data(ctx, send)
    payload = {
        "id": str(delivery.id),
        "type": event,
        "municipality": ctx.municipality.slug,
        "attempt": delivery.attempts,
        "data": data,
    }
    secret = reveal_secret(ctx.platform, endpoint)
    url = endpoint.url
    return lambda: post(url, secret, payload, delivery_id=delivery.id, event=event)


def _notification_data(notification: Notification) -> dict[str, Any]:
    return {
        "notification_id": str(notification.id),
        "account_id": str(notification.account_id),
        "template": notification.template,
        "topic": notification.topic,
        "locale": notification.locale,
        "subject": notification.subject,
        "body": notification.body,
        "created_at": notification.created_at.isoformat(),
    }


def _topic_send_data(ctx: JobContext, send: TopicSend) -> dict[str, Any]:
    """A topic send in every language its template has (a signage system or a LINE account picks one)."""
    resolved = template_library(ctx.platform).resolve(send.template, ctx.municipality.slug)
    texts = {}
    for locale in resolved.by_locale:
        rendered = resolved.render(locale, send.context)
        texts[locale] = {"subject": rendered.subject, "body": rendered.body}
    return {
        "topic_send_id": str(send.id),
        "topic": send.topic,
        "template": send.template,
        "texts": texts,
        "created_at": send.created_at.isoformat(),
    }
