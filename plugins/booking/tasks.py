"""Background jobs of the booking plugin, run by the core bound to one municipality.

- ``booking.offer_waitlist``: queued when a booking is cancelled, revoked or rejected; offers the freed slot.
- ``booking.sweep_waitlist``: every five minutes, offers slots that holds freed by expiring.
- ``booking.send_reminders``: every day at 10:00 local time, reminds people of tomorrow's bookings.
"""

from __future__ import annotations

import uuid
from datetime import time, timedelta

from core.jobs import JobContext, Periodic, job
from plugins.booking.services import context_for, reminders, waitlist


@job()
async def offer_waitlist(ctx: JobContext, unit_id: str) -> None:
    booking = context_for(ctx.platform, ctx.municipality)
    async with ctx.session() as session:
        await waitlist.offer(session, booking, unit_id=uuid.UUID(unit_id))


@job()
async def sweep_waitlist(ctx: JobContext) -> None:
    booking = context_for(ctx.platform, ctx.municipality)
    async with ctx.session() as session:
        await waitlist.offer(session, booking, actor="job:booking.sweep_waitlist")


@job()
async def send_reminders(ctx: JobContext) -> None:
    booking = context_for(ctx.platform, ctx.municipality)
    async with ctx.session() as session:
        await reminders.send_reminders(session, booking)


JOBS = [offer_waitlist, sweep_waitlist, send_reminders]
PERIODIC = [
    Periodic(job=sweep_waitlist, every=timedelta(minutes=5)),
    Periodic(job=send_reminders, daily_at=time(10, 0)),
]
