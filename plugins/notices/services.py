"""Notices: posting, listing what is visible now, withdrawing. No HTTP in here.

Every function takes a session bound to one municipality; the core filters and stamps ``municipality_id``.
Posting and withdrawing are recorded in the municipality's audit log, in the same transaction, as done by
``actor`` (``cli``, or the caller of a route: :func:`core.audit.actor_for`).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.audit import record
from core.db import utcnow
from core.exceptions import InvalidInput, NotFound
from plugins.notices.config import NoticesSettings
from plugins.notices.models import Notice
from plugins.notices.schemas import NoticeCreate, NoticeOut, NoticePage, NoticeRecord

MAX_TITLE = 200
MAX_BODY = 20_000


def to_out(notice: Notice) -> NoticeOut:
    return NoticeOut(
        id=notice.id,
        category=notice.category,
        title=notice.title,
        body=notice.body,
        published_at=notice.published_at,
        expires_at=notice.expires_at,
    )


def to_record(notice: Notice) -> NoticeRecord:
    return NoticeRecord(
        id=notice.id,
        category=notice.category,
        title=notice.title,
        body=notice.body,
        published_at=notice.published_at,
        expires_at=notice.expires_at,
        withdrawn_at=notice.withdrawn_at,
    )


def _visible_now(now: datetime):  # type: ignore[no-untyped-def]
    return (
        Notice.withdrawn_at.is_(None),
        Notice.published_at <= now,
        or_(Notice.expires_at.is_(None), Notice.expires_at > now),
    )


async def post_notice(
    session: AsyncSession, settings: NoticesSettings, data: NoticeCreate, *, actor: str = "cli"
) -> NoticeOut:
    """Create a notice. :raises InvalidInput: naming the field and the rule."""
    title, body = data.title.strip(), data.body.strip()
    if not title or len(title) > MAX_TITLE:
        raise InvalidInput(f"title: must be 1 to {MAX_TITLE} characters, got {len(title)}")
    if not body or len(body) > MAX_BODY:
        raise InvalidInput(f"body: must be 1 to {MAX_BODY} characters, got {len(body)}")
    if data.category not in settings.categories:
        raise InvalidInput(
            f"category: must be one of {', '.join(settings.categories)}, got {data.category!r}"
        )
    for field, value in (("published_at", data.published_at), ("expires_at", data.expires_at)):
        if value is not None and value.tzinfo is None:
            raise InvalidInput(f"{field}: must include a time zone offset, e.g. 2026-12-01T09:00:00+09:00")
    published_at = data.published_at or utcnow()
    if data.expires_at is not None and data.expires_at <= published_at:
        raise InvalidInput("expires_at: must be later than published_at")
    notice = Notice(
        id=uuid.uuid4(),
        category=data.category,
        title=title,
        body=body,
        published_at=published_at,
        expires_at=data.expires_at,
    )
    session.add(notice)
    await session.flush()
    record(
        session,
        actor=actor,
        action="notices.posted",
        target_type="notice",
        target_id=notice.id,
        payload={"category": notice.category},
    )
    return to_out(notice)


async def list_visible(
    session: AsyncSession, settings: NoticesSettings, *, category: str | None = None, page: int = 1
) -> NoticePage:
    """Notices visible now, newest first. :raises InvalidInput: for an unknown category or page < 1."""
    if page < 1:
        raise InvalidInput(f"page: must be 1 or more, got {page}")
    if category is not None and category not in settings.categories:
        raise InvalidInput(f"category: must be one of {', '.join(settings.categories)}, got {category!r}")
    conditions = list(_visible_now(utcnow()))
    if category is not None:
        conditions.append(Notice.category == category)
    total = await session.scalar(select(func.count()).select_from(Notice).where(*conditions)) or 0
    rows = await session.scalars(
        select(Notice)
        .where(*conditions)
        .order_by(Notice.published_at.desc(), Notice.id)
        .limit(settings.page_size)
        .offset((page - 1) * settings.page_size)
    )
    return NoticePage(items=[to_out(n) for n in rows], page=page, page_size=settings.page_size, total=total)


async def list_all(session: AsyncSession) -> list[Notice]:
    """Every notice of the municipality, withdrawn and scheduled ones included (for administrators)."""
    return list(await session.scalars(select(Notice).order_by(Notice.published_at.desc(), Notice.id)))


async def get_visible(session: AsyncSession, notice_id: uuid.UUID) -> NoticeOut:
    """:raises NotFound: if there is no such notice visible now in this municipality."""
    notice = await session.scalar(select(Notice).where(Notice.id == notice_id, *_visible_now(utcnow())))
    if notice is None:
        raise NotFound(f"no notice {notice_id}")
    return to_out(notice)


async def withdraw(session: AsyncSession, notice_id: uuid.UUID, *, actor: str = "cli") -> Notice:
    """Take a notice down (it is kept, marked withdrawn). :raises NotFound: if there is no such notice here."""
    notice = await session.scalar(select(Notice).where(Notice.id == notice_id))
    if notice is None:
        raise NotFound(f"no notice {notice_id}")
    if notice.withdrawn_at is None:
        notice.withdrawn_at = utcnow()
        record(session, actor=actor, action="notices.withdrawn", target_type="notice", target_id=notice.id)
    return notice
