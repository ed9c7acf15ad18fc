"""A resident's own wallet: balances and lots, history, the year of birth for statistics, and paying a shop."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post, put
from litestar.params import FromQuery, JSONBody

from core.http.dependencies import DbSession, MunicipalityDep, PlatformDep
from core.identity import requires
from plugins.currency import services
from plugins.currency.controllers._common import caller, idempotently, person_of, settings_of, zone
from plugins.currency.schemas import HistoryItem, PayIn, ProfileIn, ProfileOut, WalletOut


class WalletController(Controller):
    path = "/"
    guards = [requires("currency.pay")]

    @get("/wallet", summary="What I hold of each currency, lot by lot, with expiries")
    async def wallet(
        self,
        request: Request[Any, Any, Any],
        platform: PlatformDep,
        municipality: MunicipalityDep,
        db_session: DbSession,
    ) -> WalletOut:
        principal, _ = await caller(platform, request)
        return await services.wallet(db_session, settings_of(platform, municipality), person_of(principal))

    @get("/wallet/history", summary="My movements in one currency, newest first")
    async def history(
        self,
        request: Request[Any, Any, Any],
        platform: PlatformDep,
        municipality: MunicipalityDep,
        db_session: DbSession,
        currency: FromQuery[str],
        limit: FromQuery[int] = 50,
    ) -> list[HistoryItem]:
        principal, _ = await caller(platform, request)
        return await services.history(
            db_session,
            settings_of(platform, municipality),
            person_of(principal),
            currency=currency,
            limit=limit,
        )

    @get("/wallet/profile", summary="The year of birth I gave for the statistics, if any")
    async def profile(
        self, request: Request[Any, Any, Any], platform: PlatformDep, db_session: DbSession
    ) -> ProfileOut:
        principal, _ = await caller(platform, request)
        return await services.profile(db_session, person_of(principal))

    @put(
        "/wallet/profile",
        summary="Give (or withdraw) my year of birth, used only for age bands in statistics",
    )
    async def set_profile(
        self,
        request: Request[Any, Any, Any],
        platform: PlatformDep,
        db_session: DbSession,
        data: JSONBody[ProfileIn],
    ) -> ProfileOut:
        principal, actor = await caller(platform, request)
        return await services.set_profile(db_session, person_of(principal), data.birth_year, actor=actor)

    @post("/payments", summary="Pay a shop with its QR code (needs an Idempotency-Key header)")
    async def pay(
        self,
        request: Request[Any, Any, Any],
        platform: PlatformDep,
        municipality: MunicipalityDep,
        db_session: DbSession,
        data: JSONBody[PayIn],
    ) -> Response[bytes]:
        principal, actor = await caller(platform, request)
        payer = person_of(principal)

        async def run() -> Any:
            return await services.pay(
                db_session,
                settings_of(platform, municipality),
                key=services.code_key(platform.settings),
                municipality=municipality.slug,
                tz=zone(municipality),
                payer_id=payer,
                code=data.code,
                amount=data.amount,
                actor=actor,
            )

        return await idempotently(request, db_session, actor, data, run)
