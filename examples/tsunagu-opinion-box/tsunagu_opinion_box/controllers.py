"""Routes under ``/opinion_box``: send an opinion, check it by receipt."""

from __future__ import annotations

from typing import Any

from litestar import Controller, get, post
from sqlalchemy.ext.asyncio import AsyncSession

from core.platform import Platform
from core.tenancy.registry import Municipality
from tsunagu_opinion_box import services
from tsunagu_opinion_box.schemas import OpinionReceipt, OpinionSubmit


class OpinionController(Controller):
    path = "/"

    @post("/", summary="Send an opinion to the town")
    async def submit(
        self, platform: Platform, municipality: Municipality, db_session: AsyncSession, data: OpinionSubmit
    ) -> OpinionReceipt:
        settings: Any = platform.plugin_settings(municipality, "opinion_box")
        return await services.submit(db_session, settings, data)

    @get("/{receipt:str}", summary="Status of an opinion, by its receipt number")
    async def status(self, db_session: AsyncSession, receipt: str) -> OpinionReceipt:
        return services.to_receipt(await services.find(db_session, receipt))
