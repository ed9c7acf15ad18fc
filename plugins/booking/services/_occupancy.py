"""Occupying units: the rows the database's no-double-booking guard works on.

A reservation of a unit occupies that unit and every unit below it, over its time range widened by the unit's
setup and cleanup buffers. Booking the whole gym therefore holds both halves, and a booked half holds its own
row, which the whole-gym booking would need too: either order conflicts, two halves never do.

The database refuses an overlapping row (PostgreSQL: exclusion constraint; SQLite: trigger inside a write
transaction that holds the database lock from BEGIN). The check made here first only gives a better message;
the guard is the constraint, and a lost race surfaces as :class:`~core.exceptions.Conflict` (409).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from core.exceptions import Conflict
from plugins.booking.models import Occupancy, Reservation, Unit
from plugins.booking.services._facilities import descendants

OVERLAP_STATES = {"23P01", "40P01"}
"""PostgreSQL: exclusion violation; deadlock detected (two bookings of overlapping unit sets raced)."""
SQLITE_MESSAGE = "booking_occupancies overlap"


class SlotTaken(Conflict):
    """The unit (or a part of it, or the whole it belongs to) is already taken for an overlapping time."""

    title = "Slot taken"


def occupied_range(unit: Unit, starts_at: datetime, ends_at: datetime) -> tuple[datetime, datetime]:
    return starts_at - timedelta(minutes=unit.setup_minutes), ends_at + timedelta(
        minutes=unit.cleanup_minutes
    )


async def first_overlap(
    session: AsyncSession, unit_ids: Sequence[uuid.UUID], starts_at: datetime, ends_at: datetime
) -> Occupancy | None:
    return await session.scalar(
        select(Occupancy)
        .where(Occupancy.unit_id.in_(unit_ids), Occupancy.starts_at < ends_at, Occupancy.ends_at > starts_at)
        .order_by(Occupancy.starts_at)
        .limit(1)
    )


def is_overlap_error(exc: DBAPIError) -> bool:
    orig = getattr(exc, "orig", None)
    state = getattr(orig, "sqlstate", None) or getattr(getattr(orig, "__cause__", None), "sqlstate", None)
    return state in OVERLAP_STATES or SQLITE_MESSAGE in str(orig)


async def occupy(session: AsyncSession, reservation: Reservation, unit: Unit, units: Sequence[Unit]) -> None:
    """Insert the reservation's occupancy rows (the unit and every unit below it) and flush them.

    :raises SlotTaken: an overlapping live reservation holds one of those units, found first or by the database.
    """
    starts_at, ends_at = occupied_range(unit, reservation.starts_at, reservation.ends_at)
    unit_ids = sorted(descendants(units, unit.id))  # one order for every transaction: fewer deadlocks
    clash = await first_overlap(session, unit_ids, starts_at, ends_at)
    if clash is not None:
        raise SlotTaken(f"{reservation.place} is taken at that time", unit_id=str(clash.unit_id))
    session.add_all(
        Occupancy(reservation_id=reservation.id, unit_id=unit_id, starts_at=starts_at, ends_at=ends_at)
        for unit_id in unit_ids
    )
    try:
        await session.flush()
    except (IntegrityError, DBAPIError) as exc:
        if is_overlap_error(exc):
            raise SlotTaken(f"{reservation.place} was just taken by someone else") from exc
        raise
