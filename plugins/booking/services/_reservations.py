"""Booking: holds (仮予約) that people confirm, staff blocks (行政使用), and every later transition.

The rules a first-come booking must pass, in order (each refusal names what to change):

1. the unit exists here and is active; the times are aware and match the unit's slots on an open day;
2. the booking window of the person's class (resident of the town, of the region, anyone else) and the
   minimum notice;
3. a lottery facility's month is first drawn by lottery;
4. the person's live bookings this month stay under the maximum;
5. a claimed exemption (減免) is one the municipality grants;
6. nothing overlapping holds the unit, a part of it or the whole it belongs to (409, enforced by the database).

The reservation starts held, through the core workflow; its state changes go through :func:`act`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ScalarSelect, Select, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.exceptions import InvalidInput, NotFound
from core.identity.models import Account
from core.identity.principal import Principal
from core.outbox import send_later
from core.workflow import fire, start
from plugins.booking.models import Facility, LotteryDraw, Reservation, Unit
from plugins.booking.schemas import BlockCreate, ReservationCreate, ReservationOut
from plugins.booking.services._calendar import day_slots
from plugins.booking.services._context import BookingContext
from plugins.booking.services._facilities import day_rules
from plugins.booking.services._occupancy import lost_race_is_taken, occupy, refuse_if_taken
from plugins.booking.workflow import LIVE, RESERVATION

RESIDENT_TRANSITIONS = ("confirm", "submit", "accept", "cancel")
STAFF_TRANSITIONS = ("approve", "reject", "revoke")
RELEASING = ("cancel", "revoke", "reject")


def reservation_out(reservation: Reservation) -> ReservationOut:
    return ReservationOut(
        id=reservation.id,
        unit_id=reservation.unit_id,
        facility_id=reservation.facility_id,
        kind=reservation.kind,
        state=reservation.state,
        version=reservation.state_version,
        starts_at=reservation.starts_at,
        ends_at=reservation.ends_at,
        account_id=reservation.account_id,
        place=reservation.place,
        person_class=reservation.person_class,
        fee=reservation.fee,
        exemption=reservation.exemption,
        needs_review=reservation.needs_review,
        cancel_until=reservation.cancel_until,
        purpose=reservation.purpose,
        attendees=reservation.attendees,
    )


async def person_class(session: AsyncSession, ctx: BookingContext, account_id: uuid.UUID) -> str:
    """``resident`` of this town, ``region`` (another member municipality) or ``other``, by the account's
    residence."""
    return _class_of(ctx, await session.scalar(select(_RESIDENCE), {"account_id": account_id}))


def _aware(value: datetime, field: str) -> datetime:
    if value.tzinfo is None:
        raise InvalidInput(f"{field}: needs a time zone offset, e.g. 2026-12-05T10:00:00+09:00")
    return value


def slot_count(
    ctx: BookingContext, facility: Facility, unit: Unit, starts_at: datetime, ends_at: datetime
) -> int:
    """How many of the unit's slots ``[starts_at, ends_at)`` covers. :raises InvalidInput: when the range does
    not start and end on slot boundaries of one open day."""
    starts_at, ends_at = _aware(starts_at, "starts_at"), _aware(ends_at, "ends_at")
    if starts_at >= ends_at:
        raise InvalidInput("ends_at: must be later than starts_at")
    day = starts_at.astimezone(ctx.zone).date()
    slots = day_slots(
        day_rules(facility), day, ctx.zone, slot_minutes=unit.slot_minutes, fixed_slots=unit.fixed_slots
    )
    if not slots:
        raise InvalidInput(f"starts_at: {facility.name} is closed on {day.isoformat()}")
    starts = [i for i, s in enumerate(slots) if s.starts_at == starts_at]
    ends = [i for i, s in enumerate(slots) if s.ends_at == ends_at]
    if not starts or not ends or ends[0] < starts[0]:
        offered = ", ".join(f"{s.starts_at:%H:%M}–{s.ends_at:%H:%M}" for s in slots[:8])
        raise InvalidInput(
            f"starts_at/ends_at: must begin and end on the slots of {unit.name} that day ({offered}"
            f"{', …' if len(slots) > 8 else ''})"
        )
    return ends[0] - starts[0] + 1


def month_bounds(ctx: BookingContext, moment: datetime) -> tuple[datetime, datetime]:
    local = moment.astimezone(ctx.zone)
    first = datetime(local.year, local.month, 1, tzinfo=ctx.zone)
    following = datetime(local.year + local.month // 12, local.month % 12 + 1, 1, tzinfo=ctx.zone)
    return first, following


def month_key(ctx: BookingContext, moment: datetime) -> str:
    return moment.astimezone(ctx.zone).strftime("%Y-%m")


def _label(
    ctx: BookingContext, facility: Facility, unit: Unit, starts_at: datetime, ends_at: datetime
) -> tuple[str, str]:
    start, end = starts_at.astimezone(ctx.zone), ends_at.astimezone(ctx.zone)
    return f"{facility.name} {unit.name}"[:300], f"{start:%Y-%m-%d %H:%M}–{end:%H:%M}"


def cancel_deadline(ctx: BookingContext, facility: Facility, starts_at: datetime) -> datetime:
    days = facility.cancel_deadline_days
    if days is None:
        days = ctx.settings.cancel_deadline_days
    local_day = starts_at.astimezone(ctx.zone).date() - timedelta(days=days)
    return (
        datetime.combine(local_day, datetime.min.time(), ctx.zone)
        - timedelta(microseconds=1)
        + timedelta(days=1)
    )


def _reads(*extras: ScalarSelect[Any]) -> Select[Any]:
    """The unit ``:unit_id`` and every unit of its facility that is part of another (among them the unit's own
    parts, which a booking of it occupies too), each with that facility and ``extras`` beside it. A facility of
    plain courts or rooms gives one row.

    Built once at import with bound parameters: a hold pays for running the statement, not for building it.
    """
    unit_id = bindparam("unit_id")
    facility_of_unit = select(Unit.facility_id).where(Unit.id == unit_id).scalar_subquery()
    return (
        select(Unit, Facility, *extras)
        .join(Facility, Facility.id == Unit.facility_id)
        .where(Unit.facility_id == facility_of_unit, (Unit.id == unit_id) | Unit.parent_id.is_not(None))
        .order_by(Unit.name, Unit.id)
    )


_RESIDENCE = (
    select(Account.residence_municipality_id).where(Account.id == bindparam("account_id")).scalar_subquery()
)
_LIVE_THIS_MONTH = (
    select(func.count())
    .select_from(Reservation)
    .where(
        Reservation.municipality_id == bindparam("municipality_id"),
        Reservation.account_id == bindparam("account_id"),
        Reservation.state.in_(LIVE),
        Reservation.kind != "block",
        Reservation.starts_at >= bindparam("first"),
        Reservation.starts_at < bindparam("following"),
    )
    .scalar_subquery()
)
_DRAWN_AT = (
    select(LotteryDraw.drawn_at)
    .where(
        LotteryDraw.municipality_id == bindparam("municipality_id"), LotteryDraw.month == bindparam("month")
    )
    .scalar_subquery()
)
_UNITS = _reads()
_UNITS_AND_PERSON = _reads(_RESIDENCE)
_UNITS_PERSON_AND_MONTH = _reads(_RESIDENCE, _LIVE_THIS_MONTH, _DRAWN_AT)


async def _load(
    session: AsyncSession, unit_id: uuid.UUID, statement: Select[Any] = _UNITS, **params: Any
) -> tuple[Facility, Unit, list[Unit], Sequence[Any]]:
    """The unit, its facility and the units of that facility that may be its parts (see :func:`_reads`), in one
    statement, with the values of the statement's extra columns.

    :raises NotFound: no such unit here. :raises InvalidInput: the unit takes no bookings.
    """
    rows = (await session.execute(statement, {"unit_id": unit_id, **params})).all()
    unit = next((row[0] for row in rows if row[0].id == unit_id), None)
    if unit is None:
        raise NotFound(f"no unit {unit_id}")
    if not unit.active:
        raise InvalidInput(f"unit_id: {unit.name} is not taking bookings")
    return rows[0][1], unit, [row[0] for row in rows], tuple(rows[0][2:])


def _class_of(ctx: BookingContext, residence: int | None) -> str:
    if residence == ctx.municipality_id:
        return "resident"
    if residence is not None and residence in ctx.members:
        return "region"
    return "other"


async def lottery_pending(
    session: AsyncSession, ctx: BookingContext, facility: Facility, starts_at: datetime
) -> bool:
    """Whether ``starts_at`` falls in a month this facility draws by lottery and the draw has not happened."""
    if not facility.lottery_enabled:
        return False
    drawn = await session.scalar(
        select(LotteryDraw.drawn_at).where(LotteryDraw.month == month_key(ctx, starts_at))
    )
    return drawn is None


async def live_bookings_in_month(
    session: AsyncSession, ctx: BookingContext, account_id: uuid.UUID, moment: datetime
) -> int:
    first, following = month_bounds(ctx, moment)
    params = {"municipality_id": ctx.municipality_id, "account_id": account_id}
    count = await session.scalar(select(_LIVE_THIS_MONTH), {**params, "first": first, "following": following})
    return count or 0


async def book(
    session: AsyncSession,
    ctx: BookingContext,
    data: ReservationCreate,
    *,
    account_id: uuid.UUID,
    actor: Principal | None,
    kind: str = "booking",
    check_rules: bool = True,
) -> Reservation:
    """Hold a slot for a person (see the module docstring for the rules).

    :param check_rules: ``False`` for holds the plugin makes itself (a lottery win, a waitlist offer), which
        skip the window, notice, lottery and monthly checks but never the overlap guard.
    :raises NotFound: no such unit here.
    :raises InvalidInput: a broken rule, naming it.
    :raises SlotTaken: (409) the slot is taken.
    """
    # Every read the rules need, in one round trip; the checks below keep their order.
    if check_rules:
        first, following = month_bounds(ctx, data.starts_at)
        loaded = await _load(
            session,
            data.unit_id,
            _UNITS_PERSON_AND_MONTH,
            account_id=account_id,
            municipality_id=ctx.municipality_id,
            first=first,
            following=following,
            month=month_key(ctx, data.starts_at),
        )
    else:
        loaded = await _load(session, data.unit_id, _UNITS_AND_PERSON, account_id=account_id)
    facility, unit, units, read = loaded
    slots = slot_count(ctx, facility, unit, data.starts_at, data.ends_at)
    starts_at, ends_at = data.starts_at, data.ends_at
    klass = _class_of(ctx, read[0])
    now = ctx.current()
    if check_rules:
        live_this_month, drawn_at = read[1] or 0, read[2]
        window = ctx.settings.window_days(klass)
        last_day = now.astimezone(ctx.zone).date() + timedelta(days=window)
        if starts_at.astimezone(ctx.zone).date() > last_day:
            raise InvalidInput(
                f"starts_at: {klass} bookings open {window} days ahead, until {last_day.isoformat()}"
            )
        if starts_at < now + timedelta(hours=ctx.settings.min_notice_hours):
            raise InvalidInput(
                f"starts_at: bookings must be made at least {ctx.settings.min_notice_hours} hours ahead"
            )
        if facility.lottery_enabled and drawn_at is None:
            raise InvalidInput(
                f"starts_at: {month_key(ctx, starts_at)} at {facility.name} is drawn by lottery first; "
                "apply for the lottery, or book after the draw"
            )
        limit = ctx.settings.max_bookings_per_month
        if live_this_month >= limit:
            raise InvalidInput(f"starts_at: at most {limit} bookings per person per month")
    if data.exemption is not None and data.exemption not in ctx.settings.exemptions:
        known = ", ".join(ctx.settings.exemptions) or "none"
        raise InvalidInput(f"exemption: {data.exemption!r} is not granted here (exemptions: {known})")
    if len(data.purpose) > 200:
        raise InvalidInput(f"purpose: at most 200 characters, got {len(data.purpose)}")
    if data.attendees is not None and not 1 <= data.attendees <= unit.capacity:
        raise InvalidInput(
            f"attendees: must be between 1 and the unit's capacity {unit.capacity}, got {data.attendees}"
        )
    price = {"resident": unit.fee_resident, "region": unit.fee_region}.get(klass, unit.fee_other) * slots
    if data.exemption is not None:
        price = price * (100 - ctx.settings.exemptions[data.exemption]) // 100
    place, local_time = _label(ctx, facility, unit, starts_at, ends_at)
    # Checked before the hold is written; the rows go in with it, in one flush.
    rows = await refuse_if_taken(session, place, unit, units, starts_at, ends_at)
    reservation = Reservation(
        id=uuid.uuid4(),
        unit_id=unit.id,
        facility_id=facility.id,
        account_id=account_id,
        kind=kind,
        starts_at=starts_at,
        ends_at=ends_at,
        person_class=klass,
        fee=price,
        exemption=data.exemption,
        purpose=data.purpose.strip(),
        attendees=data.attendees,
        needs_review=unit.requires_approval or data.exemption is not None,
        cancel_until=cancel_deadline(ctx, facility, starts_at),
        place=place,
        local_time=local_time,
    )
    reservation.occupancies = rows
    with lost_race_is_taken(session, place, rows):
        await start(session, RESERVATION, reservation, actor=actor)
    return reservation


async def block(
    session: AsyncSession, ctx: BookingContext, data: BlockCreate, *, actor: Principal | None
) -> Reservation:
    """A staff block (行政使用): any range on the unit, confirmed at once, no fee, no notification.

    :raises SlotTaken: (409) something overlapping already holds the unit: cancel it first.
    """
    facility, unit, units, _ = await _load(session, data.unit_id)
    starts_at, ends_at = _aware(data.starts_at, "starts_at"), _aware(data.ends_at, "ends_at")
    if starts_at >= ends_at:
        raise InvalidInput("ends_at: must be later than starts_at")
    if ends_at - starts_at > timedelta(days=31):
        raise InvalidInput("ends_at: a block is at most 31 days long")
    place, local_time = _label(ctx, facility, unit, starts_at, ends_at)
    reservation = Reservation(
        id=uuid.uuid4(),
        unit_id=unit.id,
        facility_id=facility.id,
        account_id=None,
        kind="block",
        starts_at=starts_at,
        ends_at=ends_at,
        person_class="staff",
        fee=0,
        purpose=data.reason.strip()[:200],
        needs_review=False,
        cancel_until=None,
        place=place,
        local_time=local_time,
    )
    await start(session, RESERVATION, reservation, actor=actor)
    await occupy(session, reservation, unit, units)
    return await fire(session, RESERVATION, reservation, "confirm", actor=actor)


async def get_reservation(
    session: AsyncSession, reservation_id: uuid.UUID, *, account_id: uuid.UUID | None = None
) -> Reservation:
    """One reservation; with ``account_id``, only if it is that person's. :raises NotFound: otherwise."""
    query = select(Reservation).where(Reservation.id == reservation_id)
    if account_id is not None:
        query = query.where(Reservation.account_id == account_id)
    reservation = await session.scalar(query)
    if reservation is None:
        raise NotFound(f"no reservation {reservation_id}")
    return reservation


async def act(
    session: AsyncSession,
    reservation_id: uuid.UUID,
    transition: str,
    *,
    actor: Principal | None,
    account_id: uuid.UUID | None,
    expected_version: int | None = None,
) -> Reservation:
    """Fire ``transition`` on a reservation. A person (``account_id``) reaches only their own reservations and
    the resident transitions; staff (``account_id=None``) reach any, the workflow checking their permission.

    A transition that frees the slot queues the waitlist offer for it.

    :raises NotFound: no such reservation (or not the person's); an unknown transition.
    :raises TransitionConflict: (409) wrong state or version. :raises InvalidInput: a guard refused.
    """
    allowed = RESIDENT_TRANSITIONS if account_id is not None else (*RESIDENT_TRANSITIONS, *STAFF_TRANSITIONS)
    if transition not in allowed:
        raise NotFound(f"no transition {transition!r} here (transitions: {', '.join(allowed)})")
    reservation = await get_reservation(session, reservation_id, account_id=account_id)
    reservation = await fire(
        session, RESERVATION, reservation, transition, actor=actor, expected_version=expected_version
    )
    if transition in RELEASING:
        await send_later(
            session,
            "booking.offer_waitlist",
            key=f"waitlist:{reservation.id}:{reservation.state_version}",
            unit_id=str(reservation.unit_id),
        )
    return reservation


async def list_for_account(session: AsyncSession, account_id: uuid.UUID) -> list[Reservation]:
    return list(
        await session.scalars(
            select(Reservation).where(Reservation.account_id == account_id).order_by(Reservation.starts_at)
        )
    )


async def list_all(
    session: AsyncSession,
    ctx: BookingContext,
    *,
    first: date,
    last: date,
    states: Sequence[str] | None = None,
) -> list[Reservation]:
    """Every booking and block touching the days ``first`` to ``last`` (the municipality's zone)."""
    since = datetime.combine(first, datetime.min.time(), ctx.zone)
    until = datetime.combine(last + timedelta(days=1), datetime.min.time(), ctx.zone)
    query = (
        select(Reservation)
        .where(Reservation.ends_at > since, Reservation.starts_at < until)
        .order_by(Reservation.starts_at, Reservation.id)
    )
    if states:
        query = query.where(Reservation.state.in_(states))
    return list(await session.scalars(query))
