"""Wire types of the notices plugin."""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec


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


class NoticeCreate(msgspec.Struct, kw_only=True, frozen=True):
    title: str
    body: str
    category: str = "general"
    published_at: datetime | None = None
    """When it becomes visible; now if omitted."""
    expires_at: datetime | None = None


class NoticeRecord(msgspec.Struct, kw_only=True, frozen=True):
    """A notice as staff see it: whether it is visible yet, or any more."""

    id: uuid.UUID
    category: str
    title: str
    body: str
    published_at: datetime
    expires_at: datetime | None = None
    withdrawn_at: datetime | None = None
