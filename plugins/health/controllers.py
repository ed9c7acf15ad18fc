"""Routes of the health plugin (mounted under ``/health``): parse, call a service, return a Struct.

The list of upcoming sessions and its open data CSV are public. Taking part needs ``health.participate`` and a
person (a key acts for a system); running sessions needs ``health.manage``; statistics ``health.stats``.
Routes that act for a person accept the person themself, their family proxy, and staff.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from litestar import Controller, Request, Response, get, post, put
from litestar.params import FromPath, FromQuery, JSONBody

from core.audit import actor_for
from core.exceptions import Forbidden, InvalidInput
from core.http.dependencies import DbSession, MunicipalityDep, PlatformDep
from core.identity import requires
from core.identity.authn import authenticate
from core.identity.guards import is_allowed
from core.platform import Platform
from core.tenancy.registry import Municipality
from plugins.health.models import Person
from plugins.health.schemas import (
    Actor,
    ConsentIn,
    ConsentOut,
    EventCreate,
    EventOut,
    MeasureIn,
    MeasureOut,
    PersonCreate,
    PersonOut,
    ProfileIn,
    RedemptionIn,
    RedemptionOut,
    RegistrationIn,
    RegistrationOut,
    RosterEntry,
    ScanBatch,
    ScanResults,
    Stats,
)
from plugins.health.services import (
    HealthContext,
    checkin,
    context_for,
    events,
    fiscal_year,
    measures,
    outputs,
    people,
    points,
    tokens,
)
from plugins.health.services._context import expires_on

CSV = "text/csv; charset=utf-8"
SVG = "image/svg+xml"
IDEMPOTENCY_HEADER = "idempotency-key"


async def _actor(platform: Platform, municipality: Municipality, request: Request[Any, Any, Any]) -> Actor:
    principal = await authenticate(platform, request)
    return Actor(
        ref=actor_for(principal),
        account_id=principal.account_id,
        staff=is_allowed(platform, principal, municipality, "health.manage"),
    )


def _person_actor(actor: Actor) -> Actor:
    """:raises Forbidden: an API key; taking part is for people (and family acting for them)."""
    if actor.account_id is None:
        raise Forbidden("taking part is for people: log in, or use a person's access token")
    return actor


async def _person_out(db_session: Any, ctx: HealthContext, person: Person) -> PersonOut:
    return PersonOut(
        id=person.id,
        name=person.name,
        name_kana=person.name_kana,
        birth_year=person.birth_year,
        district=person.district,
        resident=person.resident,
        short_code=person.short_code,
        has_account=person.account_id is not None,
        points=await points.balance(db_session, ctx, person.id),
        points_expire_on=expires_on(fiscal_year(ctx.local_date(ctx.current()))),
    )


class EventController(Controller):
    path = "/events"

    @get("/", summary="Upcoming sessions, with places taken and waiting (public)")
    async def list_events(
        self, platform: PlatformDep, municipality: MunicipalityDep, db_session: DbSession
    ) -> list[EventOut]:
        return await events.upcoming_out(db_session, context_for(platform, municipality))

    @get("/export.csv", summary="Upcoming sessions as a 自治体標準 イベント一覧 CSV (UTF-8 with BOM)")
    async def export_csv(
        self, platform: PlatformDep, municipality: MunicipalityDep, db_session: DbSession
    ) -> Response[bytes]:
        ctx = context_for(platform, municipality)
        body = "\ufeff" + outputs.to_csv(outputs.event_rows(await events.upcoming(db_session, ctx), ctx))
        return Response(
            content=body.encode("utf-8"),
            media_type=CSV,
            headers={"content-disposition": f'attachment; filename="{municipality.code}_event.csv"'},
        )

    @post("/", guards=[requires("health.manage")], summary="Add a session")
    async def create_event(
        self,
        request: Request[Any, Any, Any],
        platform: PlatformDep,
        municipality: MunicipalityDep,
        db_session: DbSession,
        data: JSONBody[EventCreate],
    ) -> EventOut:
        ctx = context_for(platform, municipality)
        event = await events.create_event(
            db_session, ctx, await _actor(platform, municipality, request), data
        )
        return await events.event_out(db_session, event)

    @get("/{event_id:uuid}/registrations", guards=[requires("health.manage")], summary="The session's roster")
    async def roster(self, db_session: DbSession, event_id: FromPath[uuid.UUID]) -> list[RosterEntry]:
        return await events.roster(db_session, event_id)

    @post(
        "/{event_id:uuid}/registrations",
        guards=[requires("health.participate")],
        summary="Register oneself, a family member, or (staff) anyone; waitlisted when full",
    )
    async def register(
        self,
        request: Request[Any, Any, Any],
        platform: PlatformDep,
        municipality: MunicipalityDep,
        db_session: DbSession,
        event_id: FromPath[uuid.UUID],
        data: JSONBody[RegistrationIn],
    ) -> RegistrationOut:
        actor = await _actor(platform, municipality, request)
        if not actor.staff:
            _person_actor(actor)
        ctx = context_for(platform, municipality)
        registration = await events.register(db_session, ctx, actor, event_id, data.person_id)
        return await events.registration_out(db_session, registration)

    @post(
        "/{event_id:uuid}/checkins",
        guards=[requires("health.manage")],
        status_code=200,
        summary="Check people in from a batch of scans (QR token or short code), each with its device nonce",
    )
    async def check_in(
        self,
        request: Request[Any, Any, Any],
        platform: PlatformDep,
        municipality: MunicipalityDep,
        db_session: DbSession,
        event_id: FromPath[uuid.UUID],
        data: JSONBody[ScanBatch],
    ) -> ScanResults:
        ctx = context_for(platform, municipality)
        actor = await _actor(platform, municipality, request)
        return ScanResults(results=await checkin.check_in(db_session, ctx, actor, event_id, data.scans))


class RegistrationController(Controller):
    path = "/registrations"

    @post(
        "/{registration_id:uuid}/cancel",
        guards=[requires("health.participate")],
        status_code=200,
        summary="Cancel a place or a waitlist entry; the next person waiting gets the place",
    )
    async def cancel(
        self,
        request: Request[Any, Any, Any],
        platform: PlatformDep,
        municipality: MunicipalityDep,
        db_session: DbSession,
        registration_id: FromPath[uuid.UUID],
    ) -> RegistrationOut:
        ctx = context_for(platform, municipality)
        actor = await _actor(platform, municipality, request)
        registration = await events.cancel(db_session, ctx, actor, registration_id)
        return await events.registration_out(db_session, registration)


class PeopleController(Controller):
    path = "/"

    @put(
        "/me", guards=[requires("health.participate")], summary="Take part: one's own birth year and district"
    )
    async def save_profile(
        self,
        request: Request[Any, Any, Any],
        platform: PlatformDep,
        municipality: MunicipalityDep,
        db_session: DbSession,
        data: JSONBody[ProfileIn],
    ) -> PersonOut:
        ctx = context_for(platform, municipality)
        actor = _person_actor(await _actor(platform, municipality, request))
        person = await people.save_profile(db_session, ctx, actor, data)
        return await _person_out(db_session, ctx, person)

    @get("/people/mine", guards=[requires("health.participate")], summary="One's own profile and family's")
    async def mine(
        self,
        request: Request[Any, Any, Any],
        platform: PlatformDep,
        municipality: MunicipalityDep,
        db_session: DbSession,
    ) -> list[PersonOut]:
        ctx = context_for(platform, municipality)
        actor = _person_actor(await _actor(platform, municipality, request))
        return [await _person_out(db_session, ctx, p) for p in await people.own_people(db_session, actor)]

    @get("/people", guards=[requires("health.manage")], summary="Find people by name, kana or phone (staff)")
    async def find_people(
        self, platform: PlatformDep, municipality: MunicipalityDep, db_session: DbSession, q: FromQuery[str]
    ) -> list[PersonOut]:
        ctx = context_for(platform, municipality)
        return [await _person_out(db_session, ctx, p) for p in await people.search(db_session, q)]

    @post(
        "/people",
        guards=[requires("health.participate")],
        summary="Add a person without an account: family acting for them, or staff from a paper form",
    )
    async def add_person(
        self,
        request: Request[Any, Any, Any],
        platform: PlatformDep,
        municipality: MunicipalityDep,
        db_session: DbSession,
        data: JSONBody[PersonCreate],
    ) -> PersonOut:
        ctx = context_for(platform, municipality)
        person = await people.add_person(db_session, ctx, await _actor(platform, municipality, request), data)
        return await _person_out(db_session, ctx, person)

    @get(
        "/people/{person_id:uuid}/card.svg",
        guards=[requires("health.participate")],
        summary="The person's check-in QR code, to show on a phone or print on a card",
    )
    async def card(
        self,
        request: Request[Any, Any, Any],
        platform: PlatformDep,
        municipality: MunicipalityDep,
        db_session: DbSession,
        person_id: FromPath[uuid.UUID],
    ) -> Response[bytes]:
        ctx = context_for(platform, municipality)
        actor = await _actor(platform, municipality, request)
        person = await people.person_for(db_session, actor, person_id)
        token = tokens.make_token(ctx.code_key, municipality.slug, person.id)
        return Response(content=tokens.qr_svg(token), media_type=SVG)

    @get(
        "/people/{person_id:uuid}/measures",
        guards=[requires("health.participate")],
        summary="The person's measures (themself, family proxy, staff)",
    )
    async def person_measures(
        self,
        request: Request[Any, Any, Any],
        platform: PlatformDep,
        municipality: MunicipalityDep,
        db_session: DbSession,
        person_id: FromPath[uuid.UUID],
    ) -> list[MeasureOut]:
        actor = await _actor(platform, municipality, request)
        return await measures.measures_of(db_session, actor, person_id)

    @post(
        "/redemptions",
        guards=[requires("health.participate")],
        summary="Redeem points: into the regional currency where enabled, else for a voucher (Idempotency-Key)",
    )
    async def redeem(
        self,
        request: Request[Any, Any, Any],
        platform: PlatformDep,
        municipality: MunicipalityDep,
        db_session: DbSession,
        data: JSONBody[RedemptionIn],
    ) -> RedemptionOut:
        key = request.headers.get(IDEMPOTENCY_HEADER)
        if key is None:
            raise InvalidInput("idempotency-key: header required, e.g. a fresh UUID per redemption")
        ctx = context_for(platform, municipality)
        actor = await _actor(platform, municipality, request)
        person = await people.person_for(db_session, actor, data.person_id)
        return await points.redeem(
            db_session, ctx, actor, person, points=data.points, kind=data.kind, key=key
        )


class MeasureController(Controller):
    path = "/"

    @post("/consents", guards=[requires("health.manage")], summary="Record a person's consent to measures")
    async def give_consent(
        self,
        request: Request[Any, Any, Any],
        platform: PlatformDep,
        municipality: MunicipalityDep,
        db_session: DbSession,
        data: JSONBody[ConsentIn],
    ) -> ConsentOut:
        ctx = context_for(platform, municipality)
        actor = await _actor(platform, municipality, request)
        return await measures.give_consent(db_session, ctx, actor, data.person_id, data.programme)

    @post(
        "/consents/withdraw",
        guards=[requires("health.participate")],
        status_code=200,
        summary="Withdraw a consent (the person, family proxy or staff): the measures it covered are deleted",
    )
    async def withdraw_consent(
        self,
        request: Request[Any, Any, Any],
        platform: PlatformDep,
        municipality: MunicipalityDep,
        db_session: DbSession,
        data: JSONBody[ConsentIn],
    ) -> ConsentOut:
        ctx = context_for(platform, municipality)
        actor = await _actor(platform, municipality, request)
        return await measures.withdraw_consent(db_session, ctx, actor, data.person_id, data.programme)

    @post("/measures", guards=[requires("health.manage")], summary="Record a measure (needs a live consent)")
    async def record_measure(
        self,
        request: Request[Any, Any, Any],
        platform: PlatformDep,
        municipality: MunicipalityDep,
        db_session: DbSession,
        data: JSONBody[MeasureIn],
    ) -> MeasureOut:
        ctx = context_for(platform, municipality)
        actor = await _actor(platform, municipality, request)
        m = await measures.record_measure(db_session, ctx, actor, data)
        return MeasureOut(
            id=m.id,
            event_id=m.event_id,
            programme=m.programme,
            kind=m.kind,
            phase=m.phase,
            value=m.value,
            recorded_at=m.recorded_at,
        )

    @get(
        "/stats",
        guards=[requires("health.stats")],
        summary="Participation by age band and district (k-suppressed)",
    )
    async def stats(
        self,
        platform: PlatformDep,
        municipality: MunicipalityDep,
        db_session: DbSession,
        first: FromQuery[date],
        last: FromQuery[date],
    ) -> Stats:
        return await outputs.stats(db_session, context_for(platform, municipality), first, last)


CONTROLLERS = (EventController, RegistrationController, PeopleController, MeasureController)
