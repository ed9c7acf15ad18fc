"""The fan-out of a topic send: each subscriber gets their notification, in batches, each batch committed.

A batch reads the next subscribers after the send's ``cursor`` (by account id), queues their notifications as
:func:`~core.notifications.notify` would, and moves the cursor, in one transaction. A run killed half-way leaves
whole batches done; the next run (the message redelivered) goes on from the cursor, and the notifications'
idempotency key (``topic_send:<id>``) makes a batch done twice give nobody two messages.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import structlog
from sqlalchemy import select

from core.audit import record
from core.db.base import utcnow
from core.notifications.models import Subscription, TopicSend
from core.notifications.registry import template_library
from core.notifications.sending import Texts, load_people, queue_for_people
from core.notifications.templates import TemplateError

if TYPE_CHECKING:
    from core.jobs import JobContext

log = structlog.get_logger(__name__)

BATCH = 500
ACTOR = "job:core.fan_out_topic_send"


async def fan_out(ctx: JobContext, send_id: uuid.UUID, *, batch: int = BATCH) -> int:
    """Reach every subscriber of a topic send not reached yet; returns how many were reached in all."""
    while True:
        async with ctx.session() as session:
            send = await session.scalar(select(TopicSend).where(TopicSend.id == send_id).with_for_update())
            if send is None or send.status != "queued":
                return 0 if send is None else send.recipients
            query = select(Subscription.account_id).where(Subscription.topic == send.topic)
            if send.cursor is not None:
                query = query.where(Subscription.account_id > send.cursor)
            accounts = list(await session.scalars(query.order_by(Subscription.account_id).limit(batch)))
            if not accounts:
                send.status, send.finished_at = "done", utcnow()
                record(
                    session,
                    actor=ACTOR,
                    action="core.topic_send_completed",
                    target_type="topic_send",
                    target_id=send.id,
                    payload={"topic": send.topic, "recipients": send.recipients},
                )
                return send.recipients
            try:
                resolved = template_library(ctx.platform).resolve(send.template, ctx.municipality.slug)
                texts = Texts(resolved, send.context, ctx.municipality.locale)
            except TemplateError as exc:  # changed since it was queued: retrying cannot help
                log.error("notification.topic_send_failed", topic_send=str(send.id), reason=exc.detail)
                send.status, send.finished_at = "failed", utcnow()
                record(
                    session,
                    actor=ACTOR,
                    action="core.topic_send_failed",
                    target_type="topic_send",
                    target_id=send.id,
                    payload={"topic": send.topic, "recipients": send.recipients},
                )
                return send.recipients
            created = await queue_for_people(
                session,
                ctx.platform,
                ctx.municipality,
                texts,
                await load_people(session, accounts),
                dedupe_key=f"topic_send:{send.id}",
                topic=send.topic,
                topic_send_id=send.id,
            )
            send.cursor = accounts[-1]
            send.recipients += len(created)
