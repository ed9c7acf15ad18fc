"""キャンセル待ち: people wait for a taken slot; when it comes free the first in line gets a hold on it.

The offer *is* a hold (仮予約) made for the person, so it lasts as long as any hold (the workflow's timer) and
the person confirms it like any booking; if it expires the next sweep offers the slot to the next in line.
Offers are made by the job ``booking.offer_waitlist`` (queued when a booking is cancelled, revoked or
rejected) and by the periodic sweep (holds that expired free slots without anyone cancelling).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.audit import record
from core.exceptions import Conflict, InvalidInput, NotFound
from plugins.booking.models import Facility, Reservation, WaitlistEntry
from plugins.booking.schemas import ReservationCreate, WaitlistCreate, WaitlistOut
from plugins.booking.services._context import BookingContext
from plugins.booking.services._facilities import descendants, get_unit, units_of
from plugins.booking.services._occupancy import SlotTaken, first_overlap, occupied_range
from plugins.booking.services._reservations import book, slot_count


async def _position(session: AsyncSession, entry: WaitlistEntry) -> int:
    ahead = await session.scalar(
        select(func.count())
        .select_from(WaitlistEntry)
        .where(
            WaitlistEntry.unit_id == entry.unit_id,
            WaitlistEntry.starts_at == entry.starts_at,
            WaitlistEntry.state == "waiting",
            WaitlistEntry.created_at < entry.created_at,
        )
    )
    return (ahead or 0) + 1


async def waitlist_out(session: AsyncSession, entry: WaitlistEntry) -> WaitlistOut:
    return WaitlistOut(
        id=entry.id,
        unit_id=entry.unit_id,
        starts_at=entry.starts_at,
        ends_at=entry.ends_at,
        state=entry.state,
        position=await _position(session, entry) if entry.state == "waiting" else 0,
        reservation_id=entry.reservation_id,
    )


async def join(
    session: AsyncSession, ctx: BookingContext, data: WaitlistCreate, *, account_id: uuid.UUID, actor: str
) -> WaitlistEntry:
    """Wait for a taken slot. :raises InvalidInput: the slot is free (book it), or not a slot of the unit.
    :raises Conflict: the person waits for it already."""
    unit = await get_unit(session, data.unit_id)
    facility = await session.scalar(select(Facility).where(Facility.id == unit.facility_id))
    assert facility is not None
    slot_count(ctx, facility, unit, data.starts_at, data.ends_at)
    if data.starts_at <= ctx.current():
        raise InvalidInput("starts_at: that slot has begun")
    units = await units_of(session, facility.id)
    begin, end = occupied_range(unit, data.starts_at, data.ends_at)
    if await first_overlap(session, descendants(units, unit.id), begin, end) is None:
        raise InvalidInput("starts_at: that slot is free: book it instead")
    already = await session.scalar(
        select(WaitlistEntry.id).where(
            WaitlistEntry.account_id == account_id,
            WaitlistEntry.unit_id == unit.id,
            WaitlistEntry.starts_at == data.starts_at,
            WaitlistEntry.state == "waiting",
        )
    )
    if already is not None:
        raise Conflict("you are already waiting for that slot")
    entry = WaitlistEntry(
        id=uuid.uuid4(),
        unit_id=unit.id,
        account_id=account_id,
        starts_at=data.starts_at,
        ends_at=data.ends_at,
        state="waiting",
        created_at=ctx.current(),
    )
    session.add(entry)
    await session.flush()
    record(session, actor=actor, action="booking.waitlist_joined", target_type="waitlist", target_id=entry.id)
    return entry


async def withdraw(
    session: AsyncSession, entry_id: uuid.UUID, *, account_id: uuid.UUID, actor: str
) -> WaitlistEntry:
    entry = await session.scalar(
        select(WaitlistEntry).where(WaitlistEntry.id == entry_id, WaitlistEntry.account_id == account_id)
    )
    if entry is None:
        raise NotFound(f"no waitlist entry {entry_id}")
    if entry.state == "waiting":
        entry.state = "withdrawn"
        record(
            session,
            actor=actor,
            action="booking.waitlist_withdrawn",
            target_type="waitlist",
            target_id=entry.id,
        )
    return entry


async def list_for_account(session: AsyncSession, account_id: uuid.UUID) -> list[WaitlistEntry]:
    return list(
        await session.scalars(
            select(WaitlistEntry)
            .where(WaitlistEntry.account_id == account_id)
            .order_by(WaitlistEntry.starts_at)
        )
    )


async def offer(
    session: AsyncSession,
    ctx: BookingContext,
    *,
    unit_id: uuid.UUID | None = None,
    actor: str = "job:booking.offer_waitlist",
) -> list[Reservation]:
    """Offer every slot that came free to the first person waiting for it (for one unit, or all).

    Each offer is tried in a savepoint: a slot taken meanwhile is skipped, not an error.
    """
    query = (
        select(WaitlistEntry)
        .where(WaitlistEntry.state == "waiting", WaitlistEntry.starts_at > ctx.current())
        .order_by(WaitlistEntry.created_at, WaitlistEntry.id)
    )
    if unit_id is not None:
        query = query.where(WaitlistEntry.unit_id == unit_id)
    offered: list[Reservation] = []
    for entry in list(await session.scalars(query)):
        try:
            async with session.begin_nested():
                reservation = await book(
                    session,
                    ctx,
                    ReservationCreate(
                        unit_id=entry.unit_id, starts_at=entry.starts_at, ends_at=entry.ends_at
                    ),
                    account_id=entry.account_id,
                    actor=None,
                    kind="waitlist",
                    check_rules=False,
                )
        except (SlotTaken, InvalidInput):
            continue
        entry.state = "offered"
        entry.reservation_id = reservation.id
        record(
            session,
            actor=actor,
            action="booking.waitlist_offered",
            target_type="waitlist",
            target_id=entry.id,
            payload={"reservation": str(reservation.id)},
        )
        from core.notifications import notify

        await notify(
            session,
            template="booking.waitlist_offered",
            to=[entry.account_id],
            context={"place": reservation.place, "when": reservation.local_time, "id": str(reservation.id)},
            key=f"booking:waitlist_offered:{entry.id}",
        )
        offered.append(reservation)
    return offered


async def waiting_units(session: AsyncSession, now: datetime) -> list[uuid.UUID]:
    rows = await session.scalars(
        select(WaitlistEntry.unit_id)
        .where(WaitlistEntry.state == "waiting", WaitlistEntry.starts_at > now)
        .distinct()
    )
    return list(rows)
