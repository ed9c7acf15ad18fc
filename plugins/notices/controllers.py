"""Routes of the notices plugin (mounted under ``/notices``): reading is public, posting needs a permission."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, get, post
from litestar.params import FromPath, FromQuery, JSONBody

from core.audit import actor_for
from core.http.dependencies import DbSession, MunicipalityDep, PlatformDep
from core.identity import requires
from core.identity.authn import authenticate
from plugins.notices import services
from plugins.notices.schemas import NoticeCreate, NoticeOut, NoticePage, NoticeRecord


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

    @get(
        "/all",
        guards=[requires("notices.read_all")],
        summary="Every notice, scheduled and withdrawn included",
    )
    async def list_all(self, db_session: DbSession) -> list[NoticeRecord]:
        return [services.to_record(n) for n in await services.list_all(db_session)]

    @post("/", guards=[requires("notices.post")], summary="Post a notice")
    async def post_notice(
        self,
        request: Request[Any, Any, Any],
        platform: PlatformDep,
        municipality: MunicipalityDep,
        db_session: DbSession,
        data: JSONBody[NoticeCreate],
    ) -> NoticeOut:
        settings: Any = platform.plugin_settings(municipality, "notices")
        actor = actor_for(await authenticate(platform, request))
        return await services.post_notice(db_session, settings, data, actor=actor)

    @post(
        "/{notice_id:uuid}/withdraw",
        status_code=200,
        guards=[requires("notices.post")],
        summary="Take a notice down (it is kept, marked withdrawn)",
    )
    async def withdraw(
        self,
        request: Request[Any, Any, Any],
        platform: PlatformDep,
        db_session: DbSession,
        notice_id: FromPath[uuid.UUID],
    ) -> NoticeRecord:
        actor = actor_for(await authenticate(platform, request))
        notice = await services.withdraw(db_session, notice_id, actor=actor)
        await db_session.flush()
        return services.to_record(notice)
