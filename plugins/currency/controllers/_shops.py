"""A shop's till: its fixed QR code, per-sale codes, refunds and its statement (members and managers only)."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, FromQuery, JSONBody

from core.exceptions import InvalidInput
from core.http.dependencies import DbSession, MunicipalityDep, PlatformDep
from core.identity import requires
from plugins.currency import services
from plugins.currency.controllers._common import (
    caller,
    idempotently,
    parse_date,
    require_shop_access,
    settings_of,
    zone,
)
from plugins.currency.schemas import CodeOut, MerchantOut, RefundIn, SaleIn, SaleOut, StatementOut

CodeFormat = Literal["json", "png", "svg"]


def merchant_out(merchant: Any) -> MerchantOut:
    return MerchantOut(
        id=merchant.id,
        name=merchant.name,
        category=merchant.category,
        created_at=merchant.created_at,
        closed_at=merchant.closed_at,
    )


def _image(text: str, image_format: str) -> Response[bytes]:
    if image_format not in services.MEDIA_TYPES:
        raise InvalidInput(f"format: must be png or svg, got {image_format!r}")
    return Response(
        content=services.qr_image(text, image_format), media_type=services.MEDIA_TYPES[image_format]
    )  # type: ignore[arg-type]


class ShopDirectoryController(Controller):
    path = "/merchants"

    @get("/", summary="The shops that take the currency (public)")
    async def list_merchants(self, db_session: DbSession) -> list[MerchantOut]:
        return [merchant_out(m) for m in await services.list_merchants(db_session) if m.closed_at is None]


class ShopController(Controller):
    path = "/merchants/{merchant_id:uuid}"
    guards = [requires("currency.accept")]

    @get("/code", summary="The shop's fixed QR code (the payer types the amount): json, png or svg")
    async def code(
        self,
        request: Request[Any, Any, Any],
        platform: PlatformDep,
        municipality: MunicipalityDep,
        db_session: DbSession,
        merchant_id: FromPath[uuid.UUID],
        currency: FromQuery[str | None] = None,
        format: FromQuery[str] = "json",  # noqa: A002 - the query parameter's name
    ) -> Any:
        principal, _ = await caller(platform, request)
        await require_shop_access(platform, municipality, db_session, principal, merchant_id)
        settings = settings_of(platform, municipality)
        config = services.currency_of(settings, currency or settings.currencies[0].code)
        text = services.make_code(
            services.code_key(platform.settings),
            municipality=municipality.slug,
            merchant_id=merchant_id,
            currency=config.code,
        )
        if format == "json":
            return CodeOut(merchant_id=merchant_id, currency=config.code, code=text)
        return _image(text, format)

    @post("/sales", summary="A per-sale QR code: amount and expiry fixed, payable once")
    async def sale(
        self,
        request: Request[Any, Any, Any],
        platform: PlatformDep,
        municipality: MunicipalityDep,
        db_session: DbSession,
        merchant_id: FromPath[uuid.UUID],
        data: JSONBody[SaleIn],
    ) -> SaleOut:
        principal, _ = await caller(platform, request)
        await require_shop_access(platform, municipality, db_session, principal, merchant_id)
        return await services.sale_code(
            db_session,
            settings_of(platform, municipality),
            key=services.code_key(platform.settings),
            municipality=municipality.slug,
            merchant_id=merchant_id,
            amount=data.amount,
            currency=data.currency,
            ttl_seconds=data.ttl_seconds,
        )

    @post("/refunds", summary="Give (part of) a payment back (needs an Idempotency-Key header)")
    async def refund(
        self,
        request: Request[Any, Any, Any],
        platform: PlatformDep,
        municipality: MunicipalityDep,
        db_session: DbSession,
        merchant_id: FromPath[uuid.UUID],
        data: JSONBody[RefundIn],
    ) -> Response[bytes]:
        principal, actor = await caller(platform, request)
        await require_shop_access(platform, municipality, db_session, principal, merchant_id)

        async def run() -> Any:
            return await services.refund(
                db_session,
                merchant_id=merchant_id,
                payment_id=data.payment_id,
                amount=data.amount,
                actor=actor,
            )

        return await idempotently(request, db_session, actor, data, run)

    @get("/statement", summary="What the shop received and is owed over a period")
    async def statement(
        self,
        request: Request[Any, Any, Any],
        platform: PlatformDep,
        municipality: MunicipalityDep,
        db_session: DbSession,
        merchant_id: FromPath[uuid.UUID],
        currency: FromQuery[str],
        start: FromQuery[str],
        end: FromQuery[str],
    ) -> StatementOut:
        principal, _ = await caller(platform, request)
        await require_shop_access(platform, municipality, db_session, principal, merchant_id)
        return await services.statement(
            db_session,
            settings_of(platform, municipality),
            zone(municipality),
            merchant_id=merchant_id,
            currency=currency,
            start=parse_date(start, "start"),
            end=parse_date(end, "end"),
        )


class CodeImageController(Controller):
    path = "/codes"
    guards = [requires("currency.accept")]

    @get("/image", summary="The QR image of a genuine payment code of this municipality (png or svg)")
    async def image(
        self,
        platform: PlatformDep,
        municipality: MunicipalityDep,
        code: FromQuery[str],
        format: FromQuery[str] = "svg",  # noqa: A002 - the query parameter's name
    ) -> Response[bytes]:
        from core.db import utcnow

        services.read_code(
            services.code_key(platform.settings), code, municipality=municipality.slug, now=utcnow()
        )
        return _image(code, format)
