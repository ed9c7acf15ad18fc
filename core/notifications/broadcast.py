"""Staff sending one message to everyone subscribed to a topic in their town: a template, or text they wrote
(sent with the core template ``core.message``)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

import msgspec
from sqlalchemy import select

from core.exceptions import InvalidInput, NotFound
from core.notifications.models import TopicSend
from core.notifications.sending import notify_topic
from core.notifications.templates import TemplateError

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

FREE_TEXT_TEMPLATE = "core.message"
MAX_SUBJECT = 200
MAX_BODY = 10_000


class TopicSendOut(msgspec.Struct, kw_only=True, frozen=True):
    id: uuid.UUID
    topic: str
    template: str
    status: str
    """``queued`` while subscribers are being reached, then ``done`` (``failed`` if its template no longer
    renders)."""
    recipients: int
    """Subscribers given the message so far."""
    created_at: datetime
    finished_at: datetime | None


def to_out(send: TopicSend) -> TopicSendOut:
    return TopicSendOut(
        id=send.id,
        topic=send.topic,
        template=send.template,
        status=send.status,
        recipients=send.recipients,
        created_at=send.created_at,
        finished_at=send.finished_at,
    )


def message_template(
    *,
    template: str | None,
    context: dict[str, Any] | None,
    subject: str | None,
    body: str | None,
) -> tuple[str, dict[str, Any]]:
    """The template and context of a send request: a template with its context, or a subject and body.

    :raises InvalidInput: both or neither, or text of the wrong length.
    """
    free_text = subject is not None or body is not None
    if template is not None and free_text:
        raise InvalidInput("give a template (and its context) or a subject and body, not both")
    if template is not None:
        return template, dict(context or {})
    if context:
        raise InvalidInput("context goes with a template; a subject and body are sent as written")
    subject, body = (subject or "").strip(), (body or "").strip()
    if not 1 <= len(subject) <= MAX_SUBJECT or "\n" in subject:
        raise InvalidInput(f"subject must be one line of 1 to {MAX_SUBJECT} characters")
    if not 1 <= len(body) <= MAX_BODY:
        raise InvalidInput(f"body must be 1 to {MAX_BODY} characters, got {len(body)}")
    return FREE_TEXT_TEMPLATE, {"subject": subject, "body": body}


async def send_to_topic(
    session: AsyncSession,
    *,
    topic: str,
    template: str | None = None,
    context: dict[str, Any] | None = None,
    subject: str | None = None,
    body: str | None = None,
    key: str | None = None,
    actor: str,
) -> TopicSendOut:
    """Queue the message to the topic's subscribers (see :func:`core.notifications.notify_topic`).

    :raises InvalidInput: a malformed request, or a template that does not render with the context given.
    :raises NotFound: no such topic here.
    """
    name, plain = message_template(template=template, context=context, subject=subject, body=body)
    try:
        send_id = await notify_topic(session, topic=topic, template=name, context=plain, key=key, actor=actor)
    except TemplateError as exc:  # here the context is the caller's input, not a plugin's mistake
        raise InvalidInput(exc.detail) from exc
    await session.flush()
    return await topic_send_status(session, send_id)


async def topic_send_status(session: AsyncSession, send_id: uuid.UUID) -> TopicSendOut:
    """:raises NotFound: no such send in the session's municipality."""
    send = await session.scalar(select(TopicSend).where(TopicSend.id == send_id))
    if send is None:
        raise NotFound(f"no topic send {send_id}")
    return to_out(send)
