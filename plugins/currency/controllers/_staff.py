"""The municipality's side: issuing value, registering and settling with shops, corrections, reports, verify, and
the purchase statistics for analysts."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, FromQuery, JSONBody

from core.exceptions import InvalidInput
from core.http.dependencies import DbSession, MunicipalityDep, PlatformDep
from core.identity import requires
from plugins.currency import services
from plugins.currency.controllers._common import caller, idempotently, parse_date, settings_of, zone
from plugins.currency.controllers._shops import merchant_out
from plugins.currency.schemas import (
    IssueIn,
    MemberIn,
    MerchantIn,
    MerchantOut,
    OutstandingOut,
    RedeemIn,
    StatementOut,
    StatsOut,
)


class IssueController(Controller):
    path = "/issues"
    guards = [requires("currency.issue")]

    @post("/", summary="Top up a resident: purchased and bonus value (needs an Idempotency-Key header)")
    async def issue(
        self,
        request: Request[Any, Any, Any],
        platform: PlatformDep,
        municipality: MunicipalityDep,
        db_session: DbSession,
        data: JSONBody[IssueIn],
    ) -> Response[bytes]:
        _, actor = await caller(platform, request)

        async def run() -> Any:
            return await services.issue(
                db_session,
                settings_of(platform, municipality),
                person_id=data.account_id,
                currency=data.currency,
                purchased=data.purchased,
                bonus=data.bonus,
                actor=actor,
            )

        return await idempotently(request, db_session, actor, data, run)


class ManageController(Controller):
    path = "/"
    guards = [requires("currency.manage")]

    @post("/merchants", summary="Register a shop")
    async def register(
        self,
        request: Request[Any, Any, Any],
        platform: PlatformDep,
        municipality: MunicipalityDep,
        db_session: DbSession,
        data: JSONBody[MerchantIn],
    ) -> MerchantOut:
        _, actor = await caller(platform, request)
        merchant = await services.register_merchant(
            db_session,
            settings_of(platform, municipality),
            name=data.name,
            category=data.category,
            actor=actor,
        )
        return merchant_out(merchant)

    @post(
        "/merchants/{merchant_id:uuid}/members", status_code=200, summary="Let a person work the shop's till"
    )
    async def add_member(
        self,
        request: Request[Any, Any, Any],
        platform: PlatformDep,
        db_session: DbSession,
        merchant_id: FromPath[uuid.UUID],
        data: JSONBody[MemberIn],
    ) -> dict[str, bool]:
        _, actor = await caller(platform, request)
        return {"added": await services.add_member(db_session, merchant_id, data.account_id, actor=actor)}

    @post("/merchants/{merchant_id:uuid}/close", status_code=200, summary="Stop a shop taking payments")
    async def close(
        self,
        request: Request[Any, Any, Any],
        platform: PlatformDep,
        db_session: DbSession,
        merchant_id: FromPath[uuid.UUID],
    ) -> MerchantOut:
        _, actor = await caller(platform, request)
        return merchant_out(await services.close_merchant(db_session, merchant_id, actor=actor))

    @post("/redemptions", summary="Settle with a shop: pay it out (needs an Idempotency-Key header)")
    async def redeem(
        self,
        request: Request[Any, Any, Any],
        platform: PlatformDep,
        municipality: MunicipalityDep,
        db_session: DbSession,
        data: JSONBody[RedeemIn],
    ) -> Response[bytes]:
        _, actor = await caller(platform, request)

        async def run() -> Any:
            return await services.redeem(
                db_session,
                settings_of(platform, municipality),
                merchant_id=data.merchant_id,
                currency=data.currency,
                amount=data.amount,
                actor=actor,
            )

        return await idempotently(request, db_session, actor, data, run)

    @post(
        "/transfers/{transfer_id:uuid}/reverse",
        summary="Correct a transfer (needs an Idempotency-Key header)",
    )
    async def reverse(
        self,
        request: Request[Any, Any, Any],
        platform: PlatformDep,
        db_session: DbSession,
        transfer_id: FromPath[uuid.UUID],
    ) -> Response[bytes]:
        _, actor = await caller(platform, request)

        async def run() -> Any:
            return await services.reverse(db_session, transfer_id=transfer_id, actor=actor)

        return await idempotently(request, db_session, actor, {"transfer_id": str(transfer_id)}, run)

    @get("/statements", summary="Every shop's statement for a period (the settlement run)")
    async def statements(
        self,
        platform: PlatformDep,
        municipality: MunicipalityDep,
        db_session: DbSession,
        currency: FromQuery[str],
        start: FromQuery[str],
        end: FromQuery[str],
    ) -> list[StatementOut]:
        return await services.statements(
            db_session,
            settings_of(platform, municipality),
            zone(municipality),
            currency=currency,
            start=parse_date(start, "start"),
            end=parse_date(end, "end"),
        )

    @get("/reports/outstanding", summary="Outstanding value at a legal reference date (3/31, 9/30)")
    async def outstanding(
        self,
        platform: PlatformDep,
        municipality: MunicipalityDep,
        db_session: DbSession,
        currency: FromQuery[str],
        date: FromQuery[str],
    ) -> OutstandingOut:
        return await services.outstanding(
            db_session,
            settings_of(platform, municipality),
            zone(municipality),
            currency=currency,
            reference_date=parse_date(date, "date"),
        )

    @get("/verify", summary="Check that the ledger balances")
    async def verify(self, db_session: DbSession) -> services.Report:
        return await services.verify(db_session)


class StatsController(Controller):
    path = "/stats"
    guards = [requires("currency.analytics")]

    @get("/", summary="Purchase statistics per week (small cells suppressed): json or csv")
    async def stats(
        self,
        request: Request[Any, Any, Any],
        platform: PlatformDep,
        municipality: MunicipalityDep,
        db_session: DbSession,
        currency: FromQuery[str],
        start: FromQuery[str],
        end: FromQuery[str],
        format: FromQuery[str] = "json",  # noqa: A002 - the query parameter's name
    ) -> Any:
        if format not in ("json", "csv"):
            raise InvalidInput(f"format: must be json or csv, got {format!r}")
        _, actor = await caller(platform, request)
        stats: StatsOut = await services.weekly_stats(
            db_session,
            settings_of(platform, municipality),
            zone(municipality),
            currency=currency,
            first=start,
            last=end,
            actor=actor,
        )
        if format == "json":
            return stats
        return Response(content=services.stats_csv(stats), media_type="text/csv; charset=utf-8")
