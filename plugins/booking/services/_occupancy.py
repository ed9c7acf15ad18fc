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
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta

from sqlalchemy import bindparam, select
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


_FIRST_OVERLAP = (
    select(Occupancy.unit_id)
    .where(
        Occupancy.unit_id.in_(bindparam("unit_ids", expanding=True)),
        Occupancy.starts_at < bindparam("ends_at"),
        Occupancy.ends_at > bindparam("starts_at"),
    )
    .order_by(Occupancy.starts_at)
    .limit(1)
)
"""Built once: it runs on every booking."""


async def first_overlap(
    session: AsyncSession, unit_ids: Sequence[uuid.UUID], starts_at: datetime, ends_at: datetime
) -> uuid.UUID | None:
    """The unit of the earliest occupancy overlapping the range, if any (a column read: no object built)."""
    params = {"unit_ids": list(unit_ids), "starts_at": starts_at, "ends_at": ends_at}
    return await session.scalar(_FIRST_OVERLAP, params)


def is_overlap_error(exc: DBAPIError) -> bool:
    orig = getattr(exc, "orig", None)
    state = getattr(orig, "sqlstate", None) or getattr(getattr(orig, "__cause__", None), "sqlstate", None)
    return state in OVERLAP_STATES or SQLITE_MESSAGE in str(orig)


async def refuse_if_taken(
    session: AsyncSession,
    place: str,
    unit: Unit,
    units: Sequence[Unit],
    starts_at: datetime,
    ends_at: datetime,
) -> list[Occupancy]:
    """The occupancy rows a reservation of ``unit`` over ``[starts_at, ends_at)`` needs (the unit and every unit
    below it, buffers included), not yet added to the session, once the check made first finds them free.

    :raises SlotTaken: an overlapping live reservation holds one of those units.
    """
    begin, end = occupied_range(unit, starts_at, ends_at)
    unit_ids = sorted(descendants(units, unit.id))  # one order for every transaction: fewer deadlocks
    clash = await first_overlap(session, unit_ids, begin, end)
    if clash is not None:
        raise SlotTaken(f"{place} is taken at that time", unit_id=str(clash))
    return [Occupancy(unit_id=unit_id, starts_at=begin, ends_at=end) for unit_id in unit_ids]


@contextmanager
def lost_race_is_taken(session: AsyncSession, place: str, rows: Sequence[Occupancy]) -> Iterator[None]:
    """Turn the database's refusal of an overlapping row, raised while flushing ``rows``, into :class:`SlotTaken`;
    the refused rows leave the session so a caller that goes on does not write them again."""
    try:
        yield
    except (IntegrityError, DBAPIError) as exc:
        if not is_overlap_error(exc):
            raise
        for row in rows:
            if row in session:
                session.expunge(row)
        raise SlotTaken(f"{place} was just taken by someone else") from exc


async def occupy(session: AsyncSession, reservation: Reservation, unit: Unit, units: Sequence[Unit]) -> None:
    """Insert the reservation's occupancy rows (the unit and every unit below it) and flush them.

    :raises SlotTaken: an overlapping live reservation holds one of those units, found first or by the database.
    """
    rows = await refuse_if_taken(
        session, reservation.place, unit, units, reservation.starts_at, reservation.ends_at
    )
    for row in rows:
        row.reservation_id = reservation.id
    session.add_all(rows)
    with lost_race_is_taken(session, reservation.place, rows):
        await session.flush()
