"""The reminder the day before: every confirmed booking starting tomorrow (in the municipality's zone)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from plugins.booking.models import Reservation
from plugins.booking.services._context import BookingContext


async def send_reminders(session: AsyncSession, ctx: BookingContext) -> int:
    """Queue one reminder per confirmed booking that starts tomorrow; how many. Idempotent: the notification
    key is the reservation's, so a second run the same day queues nothing new."""
    from core.notifications import notify

    tomorrow = ctx.current().astimezone(ctx.zone).date() + timedelta(days=1)
    first = datetime.combine(tomorrow, datetime.min.time(), ctx.zone)
    rows = await session.scalars(
        select(Reservation).where(
            Reservation.state == "confirmed",
            Reservation.account_id.is_not(None),
            Reservation.starts_at >= first,
            Reservation.starts_at < first + timedelta(days=1),
        )
    )
    count = 0
    for reservation in rows:
        assert reservation.account_id is not None
        await notify(
            session,
            template="booking.reminder",
            to=[reservation.account_id],
            context={"place": reservation.place, "when": reservation.local_time, "id": str(reservation.id)},
            key=f"booking:reminder:{reservation.id}:{reservation.starts_at.date().isoformat()}",
        )
        count += 1
    return count
