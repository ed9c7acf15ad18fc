"""Routes under ``/opinion_box``: send an opinion, check it by receipt."""

from __future__ import annotations

from typing import Any

from litestar import Controller, get, post
from litestar.params import FromPath, JSONBody

from core.http.dependencies import DbSession, MunicipalityDep, PlatformDep
from tsunagu_opinion_box import services
from tsunagu_opinion_box.schemas import OpinionReceipt, OpinionSubmit


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
