"""Public routes of the notices plugin (mounted under ``/notices``)."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, get
from litestar.params import FromPath, FromQuery

from core.http.dependencies import DbSession, MunicipalityDep, PlatformDep
from plugins.notices import services
from plugins.notices.schemas import NoticeOut, NoticePage


class NoticeController(Controller):
    path = "/"

    @get("/", summary="Notices visible now, newest first")
    async def list_notices(
        self,
        platform: PlatformDep,
        municipality: MunicipalityDep,
        db_session: DbSession,
        category: FromQuery[str | None] = None,
        page: FromQuery[int] = 1,
    ) -> NoticePage:
        settings: Any = platform.plugin_settings(municipality, "notices")
        return await services.list_visible(db_session, settings, category=category, page=page)

    @get("/{notice_id:uuid}", summary="One notice")
    async def get_notice(self, db_session: DbSession, notice_id: FromPath[uuid.UUID]) -> NoticeOut:
        return await services.get_visible(db_session, notice_id)
