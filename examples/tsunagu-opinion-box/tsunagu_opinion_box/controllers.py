"""Routes under ``/opinion_box``: anyone sends an opinion and checks it by receipt; staff read and answer."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.params import FromPath, JSONBody

from core.audit import actor_for
from core.http.dependencies import DbSession, MunicipalityDep, PlatformDep
from core.identity import requires
from core.identity.authn import authenticate
from tsunagu_opinion_box import services
from tsunagu_opinion_box.schemas import OpinionReceipt, OpinionRecord, OpinionSubmit


class OpinionController(Controller):
    path = "/"

    @post("/", summary="Send an opinion to the town")
    async def submit(
        self,
        platform: PlatformDep,
        municipality: MunicipalityDep,
        db_session: DbSession,
        data: JSONBody[OpinionSubmit],
    ) -> OpinionReceipt:
        settings: Any = platform.plugin_settings(municipality, "opinion_box")
        return await services.submit(db_session, settings, data)

    @get("/{receipt:str}", summary="Status of an opinion, by its receipt number")
    async def status(self, db_session: DbSession, receipt: FromPath[str]) -> OpinionReceipt:
        return services.to_receipt(await services.find(db_session, receipt))

    @get("/", guards=[requires("opinion_box.read")], summary="Every opinion received, oldest first")
    async def list_opinions(self, db_session: DbSession) -> list[OpinionRecord]:
        return [services.to_record(o) for o in await services.list_all(db_session)]

    @post(
        "/{receipt:str}/answer",
        status_code=200,
        guards=[requires("opinion_box.answer")],
        summary="Mark an opinion answered",
    )
    async def answer(
        self,
        request: Request[Any, Any, Any],
        platform: PlatformDep,
        db_session: DbSession,
        receipt: FromPath[str],
    ) -> OpinionRecord:
        actor = actor_for(await authenticate(platform, request))
        opinion = await services.answer(db_session, receipt, actor=actor)
        await db_session.flush()
        return services.to_record(opinion)
