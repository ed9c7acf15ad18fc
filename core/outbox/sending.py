"""Writing to the outbox: :func:`send_later` for a job, :func:`publish_event` for a cross-plugin event.

Both add a row in the caller's transaction and nothing else: a rollback takes the message with it, and the relay
(:mod:`core.outbox.relay`) hands committed rows to the broker.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

import msgspec
from sqlalchemy.dialects import postgresql, sqlite

from core.db.base import utcnow
from core.db.session import bound_municipality
from core.outbox._nudge import mark_written
from core.outbox.models import OutboxMessage

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

JOB_NAME = re.compile(r"^[a-z][a-z0-9_]{1,39}\.[a-z_][a-z0-9_]{0,79}$")
"""``<plugin>.<function>``; the core's own jobs are ``core.<function>``. Event names follow the same rule."""
MAX_KEY_LENGTH = 200
MAX_EVENT_KEY_LENGTH = 150
"""Room left for ``event:`` before and ``:<plugin>`` after, in the keys of the per-plugin deliveries."""
DELIVER_EVENT = "core.deliver_event"
_INSERT = {
    "postgresql": postgresql.insert(OutboxMessage.__table__).on_conflict_do_nothing(
        index_elements=["municipality_id", "key"]
    ),
    "sqlite": sqlite.insert(OutboxMessage.__table__).on_conflict_do_nothing(
        index_elements=["municipality_id", "key"]
    ),
}
"""One statement per backend, built once (every workflow timer and event writes one): a Core insert, so no ORM
object; the municipality is the session's own, set above."""


class Event(msgspec.Struct, frozen=True, kw_only=True):
    """A cross-plugin event as ``on_event`` receives it. ``id`` is the same on every delivery of one event."""

    id: str
    name: str
    """``<plugin>.<what happened>``, e.g. ``booking.reservation_confirmed``."""
    data: dict[str, Any]
    occurred_at: datetime


async def send_later(
    session: AsyncSession,
    job: str,
    /,
    *,
    key: str | None = None,
    not_before: datetime | None = None,
    **kwargs: Any,
) -> bool:
    """Queue job ``job`` for the session's municipality, in the session's transaction.

    After commit the relay hands it to the broker; the job then runs at least once, bound to that municipality,
    not before ``not_before``. ``kwargs`` go through JSON (a datetime arrives as an ISO string).

    :param key: idempotency key, unique per municipality: a second message with the same key is not queued.
        The job sees it as ``ctx.message_key`` (the message id when no key was given).
    :returns: whether a message was added (``False``: one with this key exists already).
    :raises TypeError: if the session is not bound to a municipality, or ``kwargs`` are not JSON-serialisable.
    :raises ValueError: if ``job``, ``key`` or ``not_before`` is malformed.
    """
    municipality_id = bound_municipality(session)
    if municipality_id is None:
        raise TypeError("send_later needs a session bound to a municipality (platform.sessions.tenant(...))")
    if not JOB_NAME.fullmatch(job):
        raise ValueError(f"job name must be '<plugin>.<function>' in lower case, got {job!r}")
    if key is not None and not 1 <= len(key) <= MAX_KEY_LENGTH:
        raise ValueError(f"key must be 1 to {MAX_KEY_LENGTH} characters, got {len(key)}")
    if not_before is not None and not_before.tzinfo is None:
        raise ValueError("not_before must be time-zone aware")
    try:
        plain = msgspec.json.decode(msgspec.json.encode(kwargs))
    except (TypeError, msgspec.EncodeError) as exc:
        raise TypeError(f"arguments of {job} must be JSON-serialisable: {exc}") from exc
    message_id = uuid.uuid4()
    now = utcnow()
    row = {
        "municipality_id": municipality_id,
        "id": message_id,
        "key": key if key is not None else str(message_id),
        "job": job,
        "kwargs": plain,
        "created_at": now,
        "not_before": not_before or now,
        "attempts": 0,
    }
    result = await session.execute(_INSERT[session.get_bind().dialect.name], row)
    added = bool(result.rowcount)  # type: ignore[attr-defined]
    if added:
        mark_written(session)
    return added


async def publish_event(session: AsyncSession, name: str, /, *, key: str | None = None, **data: Any) -> bool:
    """Publish a cross-plugin event for the session's municipality, in the session's transaction.

    After commit, every plugin enabled for the municipality that implements ``on_event`` receives it at least
    once; one plugin failing is retried on its own. ``key`` makes publishing idempotent (same key: one event)
    and becomes the event's id.

    :returns: whether an event was added (``False``: one with this key exists already).
    :raises TypeError: as :func:`send_later`.
    :raises ValueError: if ``name`` is not ``<plugin>.<what happened>``.
    """
    if not JOB_NAME.fullmatch(name):
        raise ValueError(f"event name must be '<plugin>.<what happened>' in lower case, got {name!r}")
    event_id = key if key is not None else str(uuid.uuid4())
    if not 1 <= len(event_id) <= MAX_EVENT_KEY_LENGTH:
        raise ValueError(f"event key must be 1 to {MAX_EVENT_KEY_LENGTH} characters, got {len(event_id)}")
    event = Event(id=event_id, name=name, data=data, occurred_at=utcnow())
    return await send_later(session, DELIVER_EVENT, key=f"event:{event_id}", event=msgspec.to_builtins(event))
