"""抽選: monthly lotteries for facilities that draw next month's slots before first-come booking opens.

Applications: during a facility's application period (days ``lottery_opens_day`` to ``lottery_closes_day`` of
the month before), a person or registered group submits ranked wishes, at most ``lottery_max_wishes``;
submitting again replaces them.

The draw (:func:`draw`) is a pure function of the applications, what is already blocked, and a seed, so anyone
holding the published seed can re-run it and get the same winners:

1. applicants are ordered by ``sha256(seed + ":" + application id)`` (hex, ascending);
2. for rank 1, then 2, …: each applicant in that order wins their wish of that rank if it overlaps no slot
   already won or blocked (the unit, its parts and the whole it belongs to, buffers included) and they hold
   fewer than ``lottery_max_wins`` wins.

Publishing: the seed's SHA-256 is written to the audit log (and the draw row) and committed before the draw; the
seed itself is written with the results. Winners get a reservation in state ``won`` to accept within the
workflow's deadline; everything not won, or lapsed, opens to first-come booking once the month is drawn.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta

import msgspec
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.audit import record
from core.exceptions import Conflict, InvalidInput, NotFound
from core.workflow import fire
from plugins.booking.models import Facility, LotteryApplication, LotteryDraw, LotteryWish, Occupancy, Unit
from plugins.booking.schemas import LotteryApplicationOut, LotteryApply, ReservationCreate, WishOut
from plugins.booking.services._context import BookingContext
from plugins.booking.services._facilities import descendants, get_facility, units_of
from plugins.booking.services._reservations import book, month_key, slot_count
from plugins.booking.workflow import RESERVATION


class Wish(msgspec.Struct, kw_only=True, frozen=True):
    id: str
    rank: int
    unit_id: str
    starts_at: datetime
    ends_at: datetime


class Applicant(msgspec.Struct, kw_only=True, frozen=True):
    id: str
    """The application's id: what the order is drawn on."""
    wishes: list[Wish]


class Span(msgspec.Struct, kw_only=True, frozen=True):
    units: frozenset[str]
    starts_at: datetime
    ends_at: datetime


def parse_month(value: str) -> tuple[int, int]:
    """``YYYY-MM`` -> (year, month). :raises InvalidInput: otherwise."""
    try:
        year, month = (int(part) for part in value.split("-"))
        date(year, month, 1)
    except (ValueError, TypeError):
        raise InvalidInput(f"month: expected YYYY-MM, got {value!r}") from None
    if len(value) != 7:
        raise InvalidInput(f"month: expected YYYY-MM, got {value!r}")
    return year, month


def application_period(facility: Facility, month: str) -> tuple[date, date]:
    """The first and last day applications for ``month`` are taken (in the month before)."""
    year, number = parse_month(month)
    before = date(year, number, 1) - timedelta(days=1)
    return before.replace(day=facility.lottery_opens_day), before.replace(day=facility.lottery_closes_day)


def order_key(seed: str, application_id: str) -> str:
    return hashlib.sha256(f"{seed}:{application_id}".encode()).hexdigest()


def draw(
    applicants: Sequence[Applicant],
    seed: str,
    *,
    occupies: Mapping[str, frozenset[str]],
    buffers: Mapping[str, tuple[int, int]],
    blocked: Iterable[Span] = (),
    max_wins: int = 1,
) -> list[str]:
    """The ids of the winning wishes (see the module docstring). Pure: same inputs, same winners.

    :param occupies: unit id -> the unit ids a booking of it holds (itself and every unit below it).
    :param buffers: unit id -> (setup, cleanup) minutes.
    :param blocked: what is held already (staff blocks, earlier bookings).
    """
    taken: list[Span] = list(blocked)
    wins: dict[str, int] = {}
    winners: list[str] = []
    ordered = sorted(applicants, key=lambda a: (order_key(seed, a.id), a.id))
    ranks = sorted({w.rank for a in applicants for w in a.wishes})
    for rank in ranks:
        for applicant in ordered:
            if wins.get(applicant.id, 0) >= max_wins:
                continue
            for wish in (w for w in applicant.wishes if w.rank == rank):
                setup, cleanup = buffers.get(wish.unit_id, (0, 0))
                span = Span(
                    units=occupies.get(wish.unit_id, frozenset({wish.unit_id})),
                    starts_at=wish.starts_at - timedelta(minutes=setup),
                    ends_at=wish.ends_at + timedelta(minutes=cleanup),
                )
                if any(
                    t.units & span.units and t.starts_at < span.ends_at and span.starts_at < t.ends_at
                    for t in taken
                ):
                    continue
                taken.append(span)
                winners.append(wish.id)
                wins[applicant.id] = wins.get(applicant.id, 0) + 1
    return winners


# --- applications ----------------------------------------------------------------------------------------------


def application_out(application: LotteryApplication, wishes: Sequence[LotteryWish]) -> LotteryApplicationOut:
    return LotteryApplicationOut(
        id=application.id,
        facility_id=application.facility_id,
        month=application.month,
        group_name=application.group_name,
        wishes=[
            WishOut(
                rank=w.rank, unit_id=w.unit_id, starts_at=w.starts_at, ends_at=w.ends_at, won=w.won,
                reservation_id=w.reservation_id,
            )
            for w in sorted(wishes, key=lambda w: w.rank)
        ],
    )  # fmt: skip


async def apply(
    session: AsyncSession, ctx: BookingContext, data: LotteryApply, *, account_id: uuid.UUID, actor: str
) -> LotteryApplicationOut:
    """Submit (or replace) a person's ranked wishes for a facility and month.

    :raises InvalidInput: no lottery there, outside the application period, too many wishes, a wish that is not
        a slot of the facility in that month. :raises NotFound: no such facility or unit here.
    """
    facility = await get_facility(session, data.facility_id)
    if not facility.lottery_enabled:
        raise InvalidInput(f"facility_id: {facility.name} takes no lottery applications")
    opens, closes = application_period(facility, data.month)
    today = ctx.current().astimezone(ctx.zone).date()
    if not opens <= today <= closes:
        raise InvalidInput(f"month: applications for {data.month} are taken from {opens} to {closes}")
    if await session.scalar(select(LotteryDraw.month).where(LotteryDraw.month == data.month)) is not None:
        raise Conflict(f"month: {data.month} is being drawn or was drawn already")
    limit = ctx.settings.lottery_max_wishes
    if not 1 <= len(data.wishes) <= limit:
        raise InvalidInput(f"wishes: give 1 to {limit} wishes, got {len(data.wishes)}")
    units = {u.id: u for u in await units_of(session, facility.id)}
    seen = set()
    for index, wish in enumerate(data.wishes):
        unit = units.get(wish.unit_id)
        if unit is None or not unit.active:
            raise NotFound(f"wishes[{index}].unit_id: no unit {wish.unit_id} at {facility.name}")
        slot_count(ctx, facility, unit, wish.starts_at, wish.ends_at)
        if month_key(ctx, wish.starts_at) != data.month:
            raise InvalidInput(f"wishes[{index}].starts_at: not in {data.month}")
        if (wish.unit_id, wish.starts_at) in seen:
            raise InvalidInput(f"wishes[{index}]: the same slot twice")
        seen.add((wish.unit_id, wish.starts_at))
    if len(data.group_name) > 100:
        raise InvalidInput(f"group_name: at most 100 characters, got {len(data.group_name)}")
    application = await session.scalar(
        select(LotteryApplication).where(
            LotteryApplication.facility_id == facility.id,
            LotteryApplication.month == data.month,
            LotteryApplication.account_id == account_id,
        )
    )
    if application is None:
        application = LotteryApplication(
            id=uuid.uuid4(),
            facility_id=facility.id,
            month=data.month,
            account_id=account_id,
            created_at=ctx.current(),
        )
        session.add(application)
    application.group_name = data.group_name.strip()
    await session.flush()
    await session.execute(delete(LotteryWish).where(LotteryWish.application_id == application.id))
    wishes = [
        LotteryWish(
            id=uuid.uuid4(), application_id=application.id, rank=rank, unit_id=w.unit_id, starts_at=w.starts_at,
            ends_at=w.ends_at,
        )
        for rank, w in enumerate(data.wishes, start=1)
    ]  # fmt: skip
    session.add_all(wishes)
    await session.flush()
    record(
        session,
        actor=actor,
        action="booking.lottery_applied",
        target_type="lottery_application",
        target_id=application.id,
        payload={"month": data.month, "facility": str(facility.id), "wishes": len(wishes)},
    )
    return application_out(application, wishes)


async def applications_of(session: AsyncSession, account_id: uuid.UUID) -> list[LotteryApplicationOut]:
    applications = list(
        await session.scalars(
            select(LotteryApplication)
            .where(LotteryApplication.account_id == account_id)
            .order_by(LotteryApplication.month)
        )
    )
    wishes: dict[uuid.UUID, list[LotteryWish]] = {}
    if applications:
        for wish in await session.scalars(
            select(LotteryWish).where(LotteryWish.application_id.in_([a.id for a in applications]))
        ):
            wishes.setdefault(wish.application_id, []).append(wish)
    return [application_out(a, wishes.get(a.id, [])) for a in applications]


# --- running a draw --------------------------------------------------------------------------------------------


class DrawInputs(msgspec.Struct, kw_only=True, frozen=True):
    """Everything a draw depends on besides the seed; kept with the draw so it can be re-run later, when
    bookings made since would otherwise change what is blocked."""

    applicants: list[Applicant]
    occupies: dict[str, frozenset[str]]
    buffers: dict[str, tuple[int, int]]
    blocked: list[Span]
    max_wins: int


async def load_inputs(session: AsyncSession, ctx: BookingContext, month: str) -> DrawInputs:
    """Everything the draw of ``month`` depends on, as stored: re-running it from these gives the same result."""
    year, number = parse_month(month)
    applications = list(
        await session.scalars(select(LotteryApplication).where(LotteryApplication.month == month))
    )
    by_application: dict[uuid.UUID, list[LotteryWish]] = {}
    if applications:
        for wish in await session.scalars(
            select(LotteryWish).where(LotteryWish.application_id.in_([a.id for a in applications]))
        ):
            by_application.setdefault(wish.application_id, []).append(wish)
    units = list(await session.scalars(select(Unit)))
    occupies = {str(u.id): frozenset(str(d) for d in descendants(units, u.id)) for u in units}
    buffers = {str(u.id): (u.setup_minutes, u.cleanup_minutes) for u in units}
    first = datetime(year, number, 1, tzinfo=ctx.zone)
    following = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=ctx.zone)
    held = await session.execute(
        select(Occupancy.unit_id, Occupancy.starts_at, Occupancy.ends_at).where(
            Occupancy.starts_at < following + timedelta(days=1), Occupancy.ends_at > first - timedelta(days=1)
        )
    )
    blocked = [Span(units=frozenset({str(unit)}), starts_at=s, ends_at=e) for unit, s, e in held]
    applicants = [
        Applicant(
            id=str(a.id),
            wishes=[
                Wish(
                    id=str(w.id),
                    rank=w.rank,
                    unit_id=str(w.unit_id),
                    starts_at=w.starts_at,
                    ends_at=w.ends_at,
                )
                for w in sorted(by_application.get(a.id, []), key=lambda w: w.rank)
            ],
        )
        for a in applications
    ]
    return DrawInputs(
        applicants=applicants,
        occupies=occupies,
        buffers=buffers,
        blocked=blocked,
        max_wins=ctx.settings.lottery_max_wins,
    )


def seed_hash(seed: str) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()


async def commit_seed(session: AsyncSession, ctx: BookingContext, month: str, *, actor: str = "cli") -> str:
    """Choose the seed, record its SHA-256 (draw row and audit log); returns the seed, to draw with once this
    transaction has committed. :raises Conflict: the month was drawn already. :raises InvalidInput: the
    application period of a lottery facility has not ended."""
    parse_month(month)
    existing = await session.scalar(select(LotteryDraw).where(LotteryDraw.month == month))
    if existing is not None and existing.drawn_at is not None:
        raise Conflict(
            f"{month} was drawn at {existing.drawn_at.isoformat()}: verify it with its published seed"
        )
    today = ctx.current().astimezone(ctx.zone).date()
    for facility in await session.scalars(select(Facility).where(Facility.lottery_enabled.is_(True))):
        _, closes = application_period(facility, month)
        if today <= closes:
            raise InvalidInput(f"month: applications for {month} at {facility.name} are taken until {closes}")
    seed = secrets.token_hex(32)
    digest = seed_hash(seed)
    if existing is None:
        session.add(LotteryDraw(month=month, seed_sha256=digest, committed_at=ctx.current(), winners=0))
    else:  # an earlier run committed a seed and stopped before drawing: that seed was never used
        existing.seed_sha256 = digest
        existing.committed_at = ctx.current()
    await session.flush()
    record(
        session,
        actor=actor,
        action="booking.lottery_seed_committed",
        target_type="lottery",
        target_id=month,
        payload={"month": month, "seed_sha256": digest},
    )
    return seed


class DrawResult(msgspec.Struct, kw_only=True, frozen=True):
    month: str
    seed: str
    seed_sha256: str
    applications: int
    winners: list[str]
    """Winning wish ids, in the order they were drawn."""


async def run_draw(
    session: AsyncSession, ctx: BookingContext, month: str, seed: str, *, actor: str = "cli"
) -> DrawResult:
    """Draw ``month`` with the committed ``seed``: winners get a ``won`` reservation, every applicant a
    notification; the seed is published in the audit log.

    :raises InvalidInput: the seed does not match the committed hash. :raises Conflict: drawn already.
    """
    row = await session.scalar(select(LotteryDraw).where(LotteryDraw.month == month))
    if row is None or row.seed_sha256 != seed_hash(seed):
        raise InvalidInput(f"seed: does not match the hash committed for {month}")
    if row.drawn_at is not None:
        raise Conflict(f"{month} was drawn already")
    inputs = await load_inputs(session, ctx, month)
    winners = draw(
        inputs.applicants,
        seed,
        occupies=inputs.occupies,
        buffers=inputs.buffers,
        blocked=inputs.blocked,
        max_wins=inputs.max_wins,
    )
    applications = {
        a.id: a
        for a in await session.scalars(select(LotteryApplication).where(LotteryApplication.month == month))
    }
    wishes = {
        str(w.id): w
        for w in await session.scalars(
            select(LotteryWish).where(LotteryWish.application_id.in_(list(applications)))
        )
    }
    for wish in wishes.values():
        wish.won = False
    results: dict[uuid.UUID, list[str]] = {}
    for wish_id in winners:  # in the order drawn
        wish = wishes[wish_id]
        wish.won = True
        application = applications[wish.application_id]
        reservation = await book(
            session,
            ctx,
            ReservationCreate(unit_id=wish.unit_id, starts_at=wish.starts_at, ends_at=wish.ends_at),
            account_id=application.account_id,
            actor=None,
            kind="lottery",
            check_rules=False,
        )
        reservation = await fire(session, RESERVATION, reservation, "win", actor=None)
        wish.reservation_id = reservation.id
        results.setdefault(application.id, []).append(f"{reservation.place} {reservation.local_time}")
    row.seed = seed
    row.inputs = msgspec.to_builtins(inputs)
    row.drawn_at = ctx.current()
    row.winners = len(winners)
    await session.flush()
    record(
        session,
        actor=actor,
        action="booking.lottery_drawn",
        target_type="lottery",
        target_id=month,
        payload={
            "month": month,
            "seed": seed,
            "seed_sha256": row.seed_sha256,
            "applications": len(applications),
            "winners": len(winners),
        },
    )
    from core.notifications import notify

    for application in applications.values():
        await notify(
            session,
            template="booking.lottery_result",
            to=[application.account_id],
            context={
                "month": month,
                "won": results.get(application.id, []),
                "confirm_days": ctx.settings.lottery_confirm_days,
            },
            key=f"booking:lottery_result:{month}:{application.id}",
        )
    return DrawResult(
        month=month, seed=seed, seed_sha256=row.seed_sha256, applications=len(applications), winners=winners
    )


class Verification(msgspec.Struct, kw_only=True, frozen=True):
    month: str
    seed_sha256: str
    reproduced: bool
    winners: int


async def verify_draw(session: AsyncSession, month: str, seed: str | None = None) -> Verification:
    """Re-run the draw of ``month`` from the inputs it saw (kept with the draw) with its published seed (or
    ``seed``) and compare with the stored winners; also check those inputs are the stored applications.

    :raises NotFound: no finished draw for that month. :raises InvalidInput: a seed that is not the committed one.
    """
    row = await session.scalar(select(LotteryDraw).where(LotteryDraw.month == month))
    if row is None or row.seed is None or row.inputs is None:
        raise NotFound(f"no finished draw for {month}")
    seed = seed or row.seed
    if seed_hash(seed) != row.seed_sha256:
        raise InvalidInput(f"seed: its SHA-256 is not the one committed for {month} ({row.seed_sha256})")
    inputs = msgspec.convert(row.inputs, DrawInputs)
    again = draw(
        inputs.applicants, seed, occupies=inputs.occupies, buffers=inputs.buffers, blocked=inputs.blocked,
        max_wins=inputs.max_wins,
    )  # fmt: skip
    applications = [
        a.id
        for a in await session.scalars(select(LotteryApplication).where(LotteryApplication.month == month))
    ]
    stored = set()
    listed = set()
    if applications:
        for wish in await session.scalars(
            select(LotteryWish).where(LotteryWish.application_id.in_(applications))
        ):
            listed.add(str(wish.id))
            if wish.won:
                stored.add(str(wish.id))
    same_inputs = listed == {w.id for a in inputs.applicants for w in a.wishes}
    return Verification(
        month=month,
        seed_sha256=row.seed_sha256,
        reproduced=same_inputs and set(again) == stored,
        winners=len(stored),
    )
