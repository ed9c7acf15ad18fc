"""Reference notices: post one (validated, inserted, returned) and list a page of the visible ones.

The same wire types, validation rules and queries as the notices plugin (plugins/notices), on a table that has
no ``municipality_id`` and nothing to audit.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import msgspec
from litestar import get, post
from litestar.datastructures import State
from litestar.exceptions import ValidationException
from sqlalchemy import Column, DateTime, Index, MetaData, String, Table, Text, Uuid, func, insert, or_, select

METADATA = MetaData()
notices = Table(
    "notices",
    METADATA,
    Column("id", Uuid, primary_key=True),
    Column("category", String(32), nullable=False),
    Column("title", String(200), nullable=False),
    Column("body", Text, nullable=False),
    Column("published_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True)),
    Column("withdrawn_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_notices_published", "published_at"),
)
CATEGORIES = ("general", "bousai", "kosodate", "event")
PAGE_SIZE = 20
MAX_TITLE = 200
MAX_BODY = 20_000


class NoticeCreate(msgspec.Struct, kw_only=True, frozen=True):
    title: str
    body: str
    category: str = "general"
    published_at: datetime | None = None
    expires_at: datetime | None = None


class NoticeOut(msgspec.Struct, kw_only=True, frozen=True):
    id: uuid.UUID
    category: str
    title: str
    body: str
    published_at: datetime
    expires_at: datetime | None = None


class NoticePage(msgspec.Struct, kw_only=True, frozen=True):
    items: list[NoticeOut]
    page: int
    page_size: int
    total: int


def _visible(now: datetime) -> tuple[object, ...]:
    return (
        notices.c.withdrawn_at.is_(None),
        notices.c.published_at <= now,
        or_(notices.c.expires_at.is_(None), notices.c.expires_at > now),
    )


def _check(data: NoticeCreate) -> tuple[str, str]:
    title, body = data.title.strip(), data.body.strip()
    if not title or len(title) > MAX_TITLE:
        raise ValidationException(f"title: must be 1 to {MAX_TITLE} characters")
    if not body or len(body) > MAX_BODY:
        raise ValidationException(f"body: must be 1 to {MAX_BODY} characters")
    if data.category not in CATEGORIES:
        raise ValidationException(f"category: must be one of {', '.join(CATEGORIES)}")
    for value in (data.published_at, data.expires_at):
        if value is not None and value.tzinfo is None:
            raise ValidationException("timestamps must include a time zone offset")
    return title, body


@post("/notices/")
async def post_notice(state: State, data: NoticeCreate) -> NoticeOut:
    title, body = _check(data)
    now = datetime.now(UTC)
    published_at = data.published_at or now
    if data.expires_at is not None and data.expires_at <= published_at:
        raise ValidationException("expires_at: must be later than published_at")
    row = {
        "id": uuid.uuid4(),
        "category": data.category,
        "title": title,
        "body": body,
        "published_at": published_at,
        "expires_at": data.expires_at,
        "created_at": now,
        "updated_at": now,
    }
    async with state.engine.begin() as conn:
        await conn.execute(insert(notices), row)
    return NoticeOut(
        id=row["id"],
        category=data.category,
        title=title,
        body=body,
        published_at=published_at,
        expires_at=data.expires_at,
    )


@get("/notices/")
async def list_notices(state: State, page: int = 1, category: str | None = None) -> NoticePage:
    if page < 1:
        raise ValidationException("page: must be 1 or more")
    if category is not None and category not in CATEGORIES:
        raise ValidationException(f"category: must be one of {', '.join(CATEGORIES)}")
    conditions = list(_visible(datetime.now(UTC)))
    if category is not None:
        conditions.append(notices.c.category == category)
    async with state.engine.begin() as conn:
        total = await conn.scalar(select(func.count()).select_from(notices).where(*conditions)) or 0
        rows = await conn.execute(
            select(notices)
            .where(*conditions)
            .order_by(notices.c.published_at.desc(), notices.c.id)
            .limit(PAGE_SIZE)
            .offset((page - 1) * PAGE_SIZE)
        )
        items = [
            NoticeOut(
                id=r.id,
                category=r.category,
                title=r.title,
                body=r.body,
                published_at=r.published_at,
                expires_at=r.expires_at,
            )
            for r in rows
        ]
    return NoticePage(items=items, page=page, page_size=PAGE_SIZE, total=total)


ROUTES = [post_notice, list_notices]
