"""iCalendar feeds (RFC 5545): a unit's busy times (public, no names) and a person's own bookings.

UIDs are ``<reservation id>@<municipality slug>.booking.tsunagu`` and never change, so calendar applications
update an event in place rather than duplicating it. Times are written in the municipality's zone with a
``VTIMEZONE`` component (Asia/Tokyo), as RFC 5545 asks for zoned times.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import icalendar
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from plugins.booking.models import Reservation
from plugins.booking.services._context import BookingContext
from plugins.booking.services._facilities import descendants, get_unit, units_of
from plugins.booking.workflow import LIVE, STATES

PRODID = "-//tsunagu//booking//JA"
FEED_DAYS_BACK = 31
"""Feeds show bookings from this many days ago on."""


def uid(reservation: Reservation, slug: str) -> str:
    return f"{reservation.id}@{slug}.booking.tsunagu"


def _calendar(name: str) -> icalendar.Calendar:
    calendar = icalendar.Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("x-wr-calname", name)
    return calendar


def _event(
    reservation: Reservation, ctx: BookingContext, slug: str, summary: str, *, private: bool
) -> icalendar.Event:
    event = icalendar.Event()
    event.add("uid", uid(reservation, slug))
    event.add("dtstamp", reservation.updated_at or reservation.created_at)
    event.add("dtstart", reservation.starts_at.astimezone(ctx.zone))
    event.add("dtend", reservation.ends_at.astimezone(ctx.zone))
    event.add("summary", summary)
    event.add("location", reservation.place)
    event.add("sequence", reservation.state_version)
    event.add("status", "CONFIRMED" if reservation.state == "confirmed" else "TENTATIVE")
    event.add("transp", "OPAQUE")
    if private:
        event.add("class", "PRIVATE")
    return event


def _render(calendar: icalendar.Calendar) -> bytes:
    calendar.add_missing_timezones()
    return calendar.to_ical()


async def unit_feed(session: AsyncSession, ctx: BookingContext, slug: str, unit_id: object) -> bytes:
    """When the unit is taken (its own bookings, the whole's and its parts'), without who or why."""
    unit = await get_unit(session, unit_id)  # type: ignore[arg-type]
    units = await units_of(session, unit.facility_id)
    related = set(descendants(units, unit.id))
    current = unit
    by_id = {u.id: u for u in units}
    while current.parent_id is not None and current.parent_id in by_id:
        related.add(current.parent_id)
        current = by_id[current.parent_id]
    rows = await _live(session, ctx, Reservation.unit_id.in_(related))
    calendar = _calendar(f"{unit.name}")
    for reservation in rows:
        summary = "行政使用 (blocked)" if reservation.kind == "block" else "予約済み (booked)"
        calendar.add_component(_event(reservation, ctx, slug, summary, private=False))
    return _render(calendar)


async def person_feed(session: AsyncSession, ctx: BookingContext, slug: str, account_id: object) -> bytes:
    """The person's own live bookings."""
    rows = await _live(session, ctx, Reservation.account_id == account_id)
    calendar = _calendar(f"{ctx.name} 施設予約")
    for reservation in rows:
        title = STATES[reservation.state]
        summary = f"{reservation.place} ({title.ja})"
        calendar.add_component(_event(reservation, ctx, slug, summary, private=True))
    return _render(calendar)


async def _live(session: AsyncSession, ctx: BookingContext, condition: object) -> Sequence[Reservation]:
    since = ctx.current() - timedelta(days=FEED_DAYS_BACK)
    return list(
        await session.scalars(
            select(Reservation)
            .where(condition, Reservation.state.in_(LIVE), Reservation.ends_at > since)  # type: ignore[arg-type]
            .order_by(Reservation.starts_at, Reservation.id)
        )
    )
