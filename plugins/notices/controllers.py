"""Public routes of the notices plugin (mounted under ``/notices``)."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, get
from sqlalchemy.ext.asyncio import AsyncSession

from core.platform import Platform
from core.tenancy.registry import Municipality
from plugins.notices import services
from plugins.notices.schemas import NoticeOut, NoticePage


class NoticeController(Controller):
    path = "/"

    @get("/", summary="Notices visible now, newest first")
    async def list_notices(
        self, platform: Platform, municipality: Municipality, db_session: AsyncSession,
        category: str | None = None, page: int = 1,
    ) -> NoticePage:
        settings: Any = platform.plugin_settings(municipality, "notices")
        return await services.list_visible(db_session, settings, category=category, page=page)

    @get("/{notice_id:uuid}", summary="One notice")
    async def get_notice(self, db_session: AsyncSession, notice_id: uuid.UUID) -> NoticeOut:
        return await services.get_visible(db_session, notice_id)
