"""Routes of the booking plugin (mounted under ``/booking``): parse, call a service, return a Struct.

Looking (facilities, availability, a unit's calendar, the open data export) is public. Booking needs
``booking.reserve`` and a person (a key acts for a system, not a person); managing needs ``booking.manage``.
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from core.audit import actor_for
from core.exceptions import Forbidden
from core.http.dependencies import DbSession, MunicipalityDep, PlatformDep
from core.identity import Principal, requires
from core.identity.authn import authenticate
from core.platform import Platform
from core.tenancy.registry import Municipality
from plugins.booking.schemas import (
    Availability,
    BlockCreate,
    FacilityCreate,
    FacilityOut,
    FacilityUpdate,
    LotteryApplicationOut,
    LotteryApply,
    ReservationCreate,
    ReservationOut,
    TransitionIn,
    UnitCreate,
    UnitOut,
    UnitUpdate,
    WaitlistCreate,
    WaitlistOut,
)
from plugins.booking.services import (
    availability,
    context_for,
    facilities,
    ical,
    lottery,
    opendata,
    reservations,
    waitlist,
)

CALENDAR = "text/calendar; charset=utf-8"
CSV = "text/csv; charset=utf-8"


async def _person(platform: Platform, request: Request[Any, Any, Any]) -> tuple[Principal, uuid.UUID]:
    principal = await authenticate(platform, request)
    if principal.account_id is None:
        raise Forbidden("bookings are made by people: log in, or use a person's access token")
    return principal, principal.account_id


def _range(
    first: date | None, last: date | None, platform: Platform, municipality: Municipality
) -> tuple[date, date]:
    """The dates asked for; by default the coming week, from today in the municipality's zone."""
    ctx = context_for(platform, municipality)
    first = first or ctx.current().astimezone(ctx.zone).date()
    return first, last or first + timedelta(days=6)


class FacilityController(Controller):
    path = "/facilities"

    @get("/", summary="Facilities and their units")
    async def list_facilities(
        self, db_session: DbSession, kind: FromQuery[str | None] = None
    ) -> list[FacilityOut]:
        return await facilities.list_facilities(db_session, kind=kind)

    @get("/{facility_id:uuid}", summary="One facility with its units")
    async def get_facility(self, db_session: DbSession, facility_id: FromPath[uuid.UUID]) -> FacilityOut:
        return await facilities.describe_facility(db_session, facility_id)

    @get("/{facility_id:uuid}/availability", summary="Slots of every unit of a facility, day by day (public)")
    async def facility_availability(
        self,
        platform: PlatformDep,
        municipality: MunicipalityDep,
        db_session: DbSession,
        facility_id: FromPath[uuid.UUID],
        first: FromQuery[date | None] = None,
        last: FromQuery[date | None] = None,
    ) -> Availability:
        first, last = _range(first, last, platform, municipality)
        ctx = context_for(platform, municipality)
        return await availability.availability(
            db_session, ctx, facility_id=facility_id, first=first, last=last
        )

    @get("/export.csv", summary="The facility list as a 自治体標準 公共施設一覧 CSV (UTF-8 with BOM)")
    async def export_csv(self, municipality: MunicipalityDep, db_session: DbSession) -> Response[bytes]:
        rows = opendata.export_rows(
            await facilities.all_facilities(db_session),
            code=municipality.code,
            municipality_name=municipality.name,
        )
        body = "\ufeff" + opendata.to_csv(rows)
        return Response(
            content=body.encode("utf-8"),
            media_type=CSV,
            headers={
                "content-disposition": f'attachment; filename="{municipality.code}_public_facility.csv"'
            },
        )

    @post("/", guards=[requires("booking.manage")], summary="Add a facility")
    async def create_facility(
        self,
        request: Request[Any, Any, Any],
        platform: PlatformDep,
        db_session: DbSession,
        data: JSONBody[FacilityCreate],
    ) -> FacilityOut:
        actor = actor_for(await authenticate(platform, request))
        facility = await facilities.create_facility(db_session, data, actor=actor)
        return facilities.facility_out(facility, [])

    @patch(
        "/{facility_id:uuid}",
        guards=[requires("booking.manage")],
        summary="Change a facility's hours or rules",
    )
    async def update_facility(
        self,
        request: Request[Any, Any, Any],
        platform: PlatformDep,
        db_session: DbSession,
        facility_id: FromPath[uuid.UUID],
        data: JSONBody[FacilityUpdate],
    ) -> FacilityOut:
        actor = actor_for(await authenticate(platform, request))
        await facilities.update_facility(db_session, facility_id, data, actor=actor)
        await db_session.flush()
        return await facilities.describe_facility(db_session, facility_id)

    @post("/{facility_id:uuid}/units", guards=[requires("booking.manage")], summary="Add a bookable unit")
    async def add_unit(
        self,
        request: Request[Any, Any, Any],
        platform: PlatformDep,
        db_session: DbSession,
        facility_id: FromPath[uuid.UUID],
        data: JSONBody[UnitCreate],
    ) -> UnitOut:
        actor = actor_for(await authenticate(platform, request))
        return facilities.unit_out(await facilities.add_unit(db_session, facility_id, data, actor=actor))

    @patch(
        "/{facility_id:uuid}/units/{unit_id:uuid}",
        guards=[requires("booking.manage")],
        summary="Change a unit's fees, capacity, review, or stop its bookings",
    )
    async def update_unit(
        self,
        request: Request[Any, Any, Any],
        platform: PlatformDep,
        db_session: DbSession,
        facility_id: FromPath[uuid.UUID],
        unit_id: FromPath[uuid.UUID],
        data: JSONBody[UnitUpdate],
    ) -> UnitOut:
        actor = actor_for(await authenticate(platform, request))
        unit = await facilities.update_unit(db_session, facility_id, unit_id, data, actor=actor)
        await db_session.flush()
        return facilities.unit_out(unit)


class UnitController(Controller):
    path = "/units"

    @get("/{unit_id:uuid}/availability", summary="Slots of one unit, day by day (public)")
    async def unit_availability(
        self,
        platform: PlatformDep,
        municipality: MunicipalityDep,
        db_session: DbSession,
        unit_id: FromPath[uuid.UUID],
        first: FromQuery[date | None] = None,
        last: FromQuery[date | None] = None,
    ) -> Availability:
        first, last = _range(first, last, platform, municipality)
        ctx = context_for(platform, municipality)
        return await availability.availability(db_session, ctx, unit_id=unit_id, first=first, last=last)

    @get("/{unit_id:uuid}/calendar.ics", summary="When the unit is taken, as iCalendar (public, no names)")
    async def unit_calendar(
        self,
        platform: PlatformDep,
        municipality: MunicipalityDep,
        db_session: DbSession,
        unit_id: FromPath[uuid.UUID],
    ) -> Response[bytes]:
        ctx = context_for(platform, municipality)
        return Response(
            await ical.unit_feed(db_session, ctx, municipality.slug, unit_id), media_type=CALENDAR
        )


class ReservationController(Controller):
    path = "/reservations"

    @post("/", guards=[requires("booking.reserve")], summary="Hold a slot (仮予約); confirm it next")
    async def create(
        self,
        request: Request[Any, Any, Any],
        platform: PlatformDep,
        municipality: MunicipalityDep,
        db_session: DbSession,
        data: JSONBody[ReservationCreate],
    ) -> ReservationOut:
        principal, account_id = await _person(platform, request)
        ctx = context_for(platform, municipality)
        reservation = await reservations.book(db_session, ctx, data, account_id=account_id, actor=principal)
        return reservations.reservation_out(reservation)

    @get("/mine", guards=[requires("booking.reserve")], summary="The caller's bookings")
    async def mine(
        self, request: Request[Any, Any, Any], platform: PlatformDep, db_session: DbSession
    ) -> list[ReservationOut]:
        _, account_id = await _person(platform, request)
        return [
            reservations.reservation_out(r)
            for r in await reservations.list_for_account(db_session, account_id)
        ]

    @get(
        "/mine/calendar.ics",
        guards=[requires("booking.reserve")],
        summary="The caller's bookings as iCalendar",
    )
    async def my_calendar(
        self,
        request: Request[Any, Any, Any],
        platform: PlatformDep,
        municipality: MunicipalityDep,
        db_session: DbSession,
    ) -> Response[bytes]:
        _, account_id = await _person(platform, request)
        ctx = context_for(platform, municipality)
        return Response(
            await ical.person_feed(db_session, ctx, municipality.slug, account_id), media_type=CALENDAR
        )

    @get(
        "/", guards=[requires("booking.read_all")], summary="Every booking and block in a date range (staff)"
    )
    async def list_all(
        self,
        platform: PlatformDep,
        municipality: MunicipalityDep,
        db_session: DbSession,
        first: FromQuery[date | None] = None,
        last: FromQuery[date | None] = None,
        in_state: Annotated[str | None, QueryParameter(name="state")] = None,
    ) -> list[ReservationOut]:
        ctx = context_for(platform, municipality)
        first, last = _range(first, last, platform, municipality)
        rows = await reservations.list_all(
            db_session, ctx, first=first, last=last, states=[in_state] if in_state else None
        )
        return [reservations.reservation_out(r) for r in rows]

    @post(
        "/{reservation_id:uuid}/{transition:str}",
        status_code=200,
        guards=[requires("booking.reserve")],
        summary="confirm, submit, accept or cancel one's booking; approve, reject or revoke any (staff)",
    )
    async def transition(
        self,
        request: Request[Any, Any, Any],
        platform: PlatformDep,
        db_session: DbSession,
        reservation_id: FromPath[uuid.UUID],
        transition: FromPath[str],
        data: JSONBody[TransitionIn | None] = None,
    ) -> ReservationOut:
        principal = await authenticate(platform, request)
        staff_only = transition in reservations.STAFF_TRANSITIONS
        if not staff_only and principal.account_id is None:
            raise Forbidden("bookings are made by people: log in, or use a person's access token")
        reservation = await reservations.act(
            db_session,
            reservation_id,
            transition,
            actor=principal,
            account_id=None if staff_only else principal.account_id,
            expected_version=data.version if data is not None else None,
        )
        return reservations.reservation_out(reservation)


class BlockController(Controller):
    path = "/blocks"

    @post(
        "/",
        guards=[requires("booking.manage")],
        summary="Block a unit for the municipality's own use (行政使用)",
    )
    async def create(
        self,
        request: Request[Any, Any, Any],
        platform: PlatformDep,
        municipality: MunicipalityDep,
        db_session: DbSession,
        data: JSONBody[BlockCreate],
    ) -> ReservationOut:
        principal = await authenticate(platform, request)
        ctx = context_for(platform, municipality)
        return reservations.reservation_out(await reservations.block(db_session, ctx, data, actor=principal))


class WaitlistController(Controller):
    path = "/waitlist"

    @post("/", guards=[requires("booking.reserve")], summary="Wait for a taken slot (キャンセル待ち)")
    async def join(
        self,
        request: Request[Any, Any, Any],
        platform: PlatformDep,
        municipality: MunicipalityDep,
        db_session: DbSession,
        data: JSONBody[WaitlistCreate],
    ) -> WaitlistOut:
        principal, account_id = await _person(platform, request)
        ctx = context_for(platform, municipality)
        entry = await waitlist.join(db_session, ctx, data, account_id=account_id, actor=actor_for(principal))
        return await waitlist.waitlist_out(db_session, entry)

    @get("/mine", guards=[requires("booking.reserve")], summary="The slots the caller waits for")
    async def mine(
        self, request: Request[Any, Any, Any], platform: PlatformDep, db_session: DbSession
    ) -> list[WaitlistOut]:
        _, account_id = await _person(platform, request)
        return [
            await waitlist.waitlist_out(db_session, e)
            for e in await waitlist.list_for_account(db_session, account_id)
        ]

    @post(
        "/{entry_id:uuid}/withdraw",
        status_code=200,
        guards=[requires("booking.reserve")],
        summary="Stop waiting",
    )
    async def withdraw(
        self,
        request: Request[Any, Any, Any],
        platform: PlatformDep,
        db_session: DbSession,
        entry_id: FromPath[uuid.UUID],
    ) -> WaitlistOut:
        principal, account_id = await _person(platform, request)
        entry = await waitlist.withdraw(
            db_session, entry_id, account_id=account_id, actor=actor_for(principal)
        )
        return await waitlist.waitlist_out(db_session, entry)


class LotteryController(Controller):
    path = "/lottery"

    @post(
        "/applications", guards=[requires("booking.reserve")], summary="Apply for next month's lottery (抽選)"
    )
    async def apply(
        self,
        request: Request[Any, Any, Any],
        platform: PlatformDep,
        municipality: MunicipalityDep,
        db_session: DbSession,
        data: JSONBody[LotteryApply],
    ) -> LotteryApplicationOut:
        principal, account_id = await _person(platform, request)
        ctx = context_for(platform, municipality)
        return await lottery.apply(db_session, ctx, data, account_id=account_id, actor=actor_for(principal))

    @get(
        "/applications/mine",
        guards=[requires("booking.reserve")],
        summary="The caller's lottery applications",
    )
    async def mine(
        self, request: Request[Any, Any, Any], platform: PlatformDep, db_session: DbSession
    ) -> list[LotteryApplicationOut]:
        _, account_id = await _person(platform, request)
        return await lottery.applications_of(db_session, account_id)


CONTROLLERS = (
    FacilityController,
    UnitController,
    ReservationController,
    BlockController,
    WaitlistController,
    LotteryController,
)
