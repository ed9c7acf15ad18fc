"""Queueing notifications: :func:`notify` (to people) and :func:`notify_topic` (to a topic's subscribers).

Both work inside the caller's transaction. :func:`notify` renders the message in each person's language, adds
their inbox item, and one delivery per further channel (email, plugin channels, matching webhook endpoints), each
with an outbox message to the job ``core.deliver_notification``: committed with the caller's change, sent after
it, never lost if the broker is down. :func:`notify_topic` records the send and queues the job
``core.fan_out_topic_send``, which reaches the subscribers in batches.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import msgspec
import structlog
from sqlalchemy import select

from core.audit import record
from core.db.base import utcnow
from core.db.owner import platform_of
from core.db.session import bound_municipality
from core.exceptions import CrossTenantAccess, InvalidInput, NotFound
from core.identity.models import Account
from core.notifications._sql import insert_for
from core.notifications.channels import CORE_CHANNELS, EMAIL, INBOX, WEBHOOK
from core.notifications.config import load_notification_settings
from core.notifications.models import Delivery, Notification, Preference, TopicSend
from core.notifications.registry import channels_for, contributions, template_library
from core.notifications.templates import Rendered, Resolved
from core.notifications.topics import require_topic
from core.notifications.webhooks import endpoints_for
from core.outbox import send_later

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from core.platform import Platform
    from core.tenancy.registry import Municipality

log = structlog.get_logger(__name__)

DELIVER_JOB = "core.deliver_notification"
FAN_OUT_JOB = "core.fan_out_topic_send"
MAX_KEY = 160
MAX_CONTEXT_BYTES = 16_384


def delivery_key(delivery_id: uuid.UUID, attempt: int) -> str:
    """The outbox key of one attempt of a delivery: a second queueing of the same attempt is a no-op."""
    return f"notification-delivery:{delivery_id}:{attempt}"


def platform_and_municipality(session: AsyncSession) -> tuple[Platform, Municipality]:
    """The platform that made the session, and the municipality the session is bound to.

    :raises CrossTenantAccess: the session is not bound to a municipality.
    """
    municipality_id = bound_municipality(session)
    if municipality_id is None:
        raise CrossTenantAccess("notifications are queued in a session bound to a municipality")
    platform = platform_of(session)
    municipality = platform.snapshot.by_id.get(municipality_id)
    if municipality is None:
        raise NotFound(f"municipality {municipality_id} is not loaded: refresh the platform first")
    return platform, municipality


def _check_key(key: str | None) -> None:
    if key is not None and not (1 <= len(key) <= MAX_KEY and key.isprintable()):
        raise InvalidInput(f"key must be 1 to {MAX_KEY} printable characters, got {key[:40]!r}")


def _check_context(context: Mapping[str, Any]) -> dict[str, Any]:
    """The context as JSON gives it back; :raises InvalidInput: not a small JSON object."""
    try:
        encoded = msgspec.json.encode(dict(context))
    except (TypeError, ValueError, msgspec.EncodeError) as exc:
        raise InvalidInput(f"context must be a JSON object: {exc}") from exc
    if len(encoded) > MAX_CONTEXT_BYTES:
        raise InvalidInput(f"context must be at most {MAX_CONTEXT_BYTES} bytes as JSON, got {len(encoded)}")
    return msgspec.json.decode(encoded)


def _wanted_channels(platform: Platform, channels: Sequence[str] | None) -> frozenset[str] | None:
    if channels is None:
        return None
    known = set(CORE_CHANNELS) | set(contributions(platform).channels)
    unknown = sorted(set(channels) - known)
    if unknown:
        raise InvalidInput(f"channels: unknown {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    return frozenset(channels)


async def notify(
    session: AsyncSession,
    *,
    template: str,
    to: Sequence[uuid.UUID],
    context: Mapping[str, Any],
    key: str | None = None,
    channels: Sequence[str] | None = None,
    actor: str = "system",
) -> list[uuid.UUID]:
    """Queue a notification to people (account ids) in the caller's transaction; delivered after commit.

    Each person gets it in their language (the municipality's when the template lacks theirs): in the in-app
    inbox always, by email when they have an address, the deployment has SMTP and they have not switched it
    off, on each enabled plugin channel they have not switched off; and every webhook endpoint registered for
    the template gets it too. ``channels`` narrows that to the channels named (``"inbox"`` included or not).

    :param key: idempotency key (per municipality): a person already notified under it is not notified again.
    :param actor: who is sending, for the audit log (``account:<id>``, ``plugin:<name>``, ``system``...).
    :returns: the ids of the notifications created (none for people notified under ``key`` before, or unknown).
    :raises InvalidInput: a malformed template name, key or channel, or a context that is not JSON.
    :raises TemplateError: no such template, or it does not render with ``context``.
    """
    platform, municipality = platform_and_municipality(session)
    _check_key(key)
    plain = _check_context(context)
    wanted = _wanted_channels(platform, channels)
    resolved = template_library(platform).resolve(template, municipality.slug)
    texts = Texts(resolved, plain, municipality.locale)
    people = await load_people(session, _account_ids(to))
    dedupe = key if key is not None else f"notify:{uuid.uuid4()}"
    created = await queue_for_people(
        session, platform, municipality, texts, people, dedupe_key=dedupe, wanted=wanted
    )
    if created and (wanted is None or WEBHOOK in wanted):
        for endpoint in await endpoints_for(session, template=template):
            for notification_id in created:
                await _add_delivery(
                    session, WEBHOOK, notification_id=notification_id, endpoint_id=endpoint.id
                )
    if created:
        record(
            session,
            actor=actor,
            action="core.notification_queued",
            target_type="template",
            target_id=template,
            payload={"recipients": len(created), "key": key},
        )
    return created


def _account_ids(to: Sequence[uuid.UUID]) -> list[uuid.UUID]:
    """The recipients, each once, in order. :raises InvalidInput: something that is not an account id."""
    if isinstance(to, str | bytes):
        raise InvalidInput("to must be a list of account ids, not one string")
    try:
        return list(dict.fromkeys(a if isinstance(a, uuid.UUID) else uuid.UUID(str(a)) for a in to))
    except ValueError as exc:
        raise InvalidInput(f"to must be account ids: {exc}") from None


class Texts:
    """A template rendered once per language with one context (every recipient shares it)."""

    def __init__(self, resolved: Resolved, context: Mapping[str, Any], fallback: str) -> None:
        self.resolved = resolved
        self.context = context
        self.fallback = fallback
        # Every language now: a template that does not render fails here, whoever the recipients are.
        self._rendered = {locale: resolved.render(locale, context) for locale in resolved.by_locale}

    def for_locale(self, wanted: str | None) -> Rendered:
        return self._rendered[self.resolved.locale_for(wanted, self.fallback)]


class Person(msgspec.Struct, frozen=True):
    id: uuid.UUID
    locale: str
    has_email: bool


async def load_people(session: AsyncSession, ids: list[uuid.UUID]) -> list[Person]:
    """The accounts among ``ids`` that exist and are not disabled, in the order given."""
    if not ids:
        return []
    rows = await session.execute(
        select(Account.id, Account.locale, Account.email).where(
            Account.id.in_(ids), Account.disabled_at.is_(None)
        )
    )
    found = {row.id: Person(row.id, row.locale, bool(row.email)) for row in rows}
    missing = len(ids) - len(found)
    if missing:
        log.warning("notification.unknown_recipients", count=missing)
    return [found[i] for i in ids if i in found]


async def _preferences(session: AsyncSession, people: Iterable[Person]) -> dict[tuple[uuid.UUID, str], bool]:
    ids = [p.id for p in people]
    if not ids:
        return {}
    rows = await session.execute(
        select(Preference.account_id, Preference.channel, Preference.enabled).where(
            Preference.account_id.in_(ids)
        )
    )
    return {(row.account_id, row.channel): row.enabled for row in rows}


async def queue_for_people(
    session: AsyncSession,
    platform: Platform,
    municipality: Municipality,
    texts: Texts,
    people: Sequence[Person],
    *,
    dedupe_key: str,
    wanted: frozenset[str] | None = None,
    topic: str | None = None,
    topic_send_id: uuid.UUID | None = None,
) -> list[uuid.UUID]:
    """Add each person's notification (unless one with ``dedupe_key`` exists) and its channel deliveries."""
    email_on = load_notification_settings().smtp is not None and (wanted is None or EMAIL in wanted)
    plugin_channels = {
        name: channel
        for name, channel in channels_for(platform, municipality).items()
        if wanted is None or name in wanted
    }
    chosen = await _preferences(session, people)
    insert = insert_for(session)
    created = []
    now = utcnow()
    for person in people:
        rendered = texts.for_locale(person.locale)
        notification_id = uuid.uuid4()
        result = await session.execute(
            insert(Notification)
            .values(
                municipality_id=municipality.id,
                id=notification_id,
                account_id=person.id,
                dedupe_key=dedupe_key,
                template=texts.resolved.name,
                topic=topic,
                topic_send_id=topic_send_id,
                locale=rendered.locale,
                subject=rendered.subject,
                body=rendered.body,
                in_inbox=wanted is None or INBOX in wanted,
                created_at=now,
            )
            .on_conflict_do_nothing(index_elements=["municipality_id", "dedupe_key", "account_id"])
        )
        if not result.rowcount:  # type: ignore[attr-defined]
            continue
        created.append(notification_id)
        if email_on and person.has_email and chosen.get((person.id, EMAIL), True):
            await _add_delivery(session, EMAIL, notification_id=notification_id)
        for name, channel in plugin_channels.items():
            if chosen.get((person.id, name), channel.default_enabled):
                await _add_delivery(session, name, notification_id=notification_id)
    return created


async def _add_delivery(
    session: AsyncSession,
    channel: str,
    *,
    notification_id: uuid.UUID | None = None,
    topic_send_id: uuid.UUID | None = None,
    endpoint_id: uuid.UUID | None = None,
) -> uuid.UUID:
    delivery = Delivery(
        id=uuid.uuid4(),
        notification_id=notification_id,
        topic_send_id=topic_send_id,
        channel=channel,
        endpoint_id=endpoint_id,
        status="pending",
        attempts=0,
    )
    session.add(delivery)
    await send_later(session, DELIVER_JOB, key=delivery_key(delivery.id, 1), delivery_id=str(delivery.id))
    return delivery.id


async def notify_topic(
    session: AsyncSession,
    *,
    topic: str,
    template: str,
    context: Mapping[str, Any],
    key: str | None = None,
    actor: str = "system",
) -> uuid.UUID:
    """Queue one message to everyone subscribed to ``topic`` in the session's municipality.

    The send is recorded now, in the caller's transaction, with one delivery per webhook endpoint registered for
    the topic; the job ``core.fan_out_topic_send`` then gives each subscriber their notification (as
    :func:`notify` would) in batches. ``key`` makes it idempotent: the same key returns the first send's id.

    :returns: the id of the topic send.
    :raises NotFound: the municipality offers no such topic.
    :raises InvalidInput: a malformed template name or key, or a context that is not JSON.
    :raises TemplateError: no such template, or it does not render with ``context`` in some language.
    """
    platform, municipality = platform_and_municipality(session)
    _check_key(key)
    plain = _check_context(context)
    await require_topic(session, topic)
    resolved = template_library(platform).resolve(template, municipality.slug)
    for locale in resolved.by_locale:
        resolved.render(locale, plain)  # fails now rather than in the fan-out
    send_key = key if key is not None else str(uuid.uuid4())
    send_id = uuid.uuid4()
    insert = insert_for(session)
    result = await session.execute(
        insert(TopicSend)
        .values(
            municipality_id=municipality.id,
            id=send_id,
            key=send_key,
            topic=topic,
            template=template,
            context=plain,
            actor=actor,
            status="queued",
            recipients=0,
            created_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["municipality_id", "key"])
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        existing = await session.scalar(select(TopicSend.id).where(TopicSend.key == send_key))
        assert existing is not None
        return existing
    for endpoint in await endpoints_for(session, topic=topic):
        await _add_delivery(session, WEBHOOK, topic_send_id=send_id, endpoint_id=endpoint.id)
    await send_later(session, FAN_OUT_JOB, key=f"topic-send:{send_id}", topic_send_id=str(send_id))
    record(
        session,
        actor=actor,
        action="core.topic_send_queued",
        target_type="topic_send",
        target_id=send_id,
        payload={"topic": topic, "template": template},
    )
    return send_id
