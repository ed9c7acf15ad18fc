"""The in-app inbox of the signed-in person: their notifications in the bound municipality, newest first.

Every function takes the person's account id and a session bound to the municipality; a notification of
another person, or of another municipality, is simply not found.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING

import msgspec
from sqlalchemy import func, select, update

from core.audit import record
from core.audit.query import decode_cursor, encode_cursor
from core.db.base import utcnow
from core.exceptions import InvalidInput, NotFound
from core.notifications.models import Notification

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

MAX_LIMIT = 100


class InboxItem(msgspec.Struct, kw_only=True, frozen=True):
    id: uuid.UUID
    template: str
    topic: str | None
    subject: str
    body: str
    locale: str
    created_at: datetime
    read_at: datetime | None


class InboxPage(msgspec.Struct, kw_only=True, frozen=True):
    items: list[InboxItem]
    unread: int
    next_cursor: str | None
    """Pass as ``cursor`` for the next (older) page; ``None`` on the last page."""


def to_item(n: Notification) -> InboxItem:
    return InboxItem(
        id=n.id,
        template=n.template,
        topic=n.topic,
        subject=n.subject,
        body=n.body,
        locale=n.locale,
        created_at=n.created_at,
        read_at=n.read_at,
    )


def _mine(account_id: uuid.UUID) -> tuple[object, ...]:
    return (Notification.account_id == account_id, Notification.in_inbox.is_(True))


async def unread_count(session: AsyncSession, account_id: uuid.UUID) -> int:
    query = (
        select(func.count())
        .select_from(Notification)
        .where(*_mine(account_id), Notification.read_at.is_(None))
    )
    return int(await session.scalar(query) or 0)


async def list_inbox(
    session: AsyncSession,
    account_id: uuid.UUID,
    *,
    unread_only: bool = False,
    limit: int = 20,
    cursor: str | None = None,
) -> InboxPage:
    """One page of the person's inbox. :raises InvalidInput: a limit outside 1 to 100, or a foreign cursor."""
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}, got {limit}")
    query = select(Notification).where(*_mine(account_id))
    if unread_only:
        query = query.where(Notification.read_at.is_(None))
    if cursor is not None:
        at, last_id = decode_cursor(cursor)
        query = query.where(
            (Notification.created_at < at) | ((Notification.created_at == at) & (Notification.id < last_id))
        )
    rows = list(
        await session.scalars(
            query.order_by(Notification.created_at.desc(), Notification.id.desc()).limit(limit + 1)
        )
    )
    items = [to_item(n) for n in rows[:limit]]
    more = len(rows) > limit
    return InboxPage(
        items=items,
        unread=await unread_count(session, account_id),
        next_cursor=encode_cursor(items[-1].created_at, items[-1].id) if more else None,
    )


async def mark_read(session: AsyncSession, account_id: uuid.UUID, notification_id: uuid.UUID) -> InboxItem:
    """:raises NotFound: not one of the person's notifications here."""
    notification = await session.scalar(
        select(Notification).where(*_mine(account_id), Notification.id == notification_id)
    )
    if notification is None:
        raise NotFound(f"no notification {notification_id} in your inbox")
    if notification.read_at is None:
        notification.read_at = utcnow()
        record(
            session,
            actor=f"account:{account_id}",
            action="core.notification_read",
            target_type="notification",
            target_id=notification_id,
        )
    return to_item(notification)


async def mark_all_read(session: AsyncSession, account_id: uuid.UUID) -> int:
    """Mark every unread notification of the person read; returns how many."""
    result = await session.execute(
        update(Notification)
        .where(*_mine(account_id), Notification.read_at.is_(None))
        .values(read_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    count = int(result.rowcount or 0)  # type: ignore[attr-defined]
    if count:
        record(
            session,
            actor=f"account:{account_id}",
            action="core.notifications_read",
            target_type="account",
            target_id=account_id,
            payload={"count": count},
        )
    return count
