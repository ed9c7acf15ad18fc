"""Background jobs of the health plugin, run by the core bound to one municipality.

- ``health.send_reminders``: every day at 10:00 local time, reminds people of tomorrow's sessions.
"""

from __future__ import annotations

from datetime import time

from core.jobs import JobContext, Periodic, job
from plugins.health.services import context_for, outputs


@job()
async def send_reminders(ctx: JobContext) -> None:
    health = context_for(ctx.platform, ctx.municipality)
    async with ctx.session() as session:
        await outputs.send_reminders(session, health)


JOBS = [send_reminders]
PERIODIC = [Periodic(job=send_reminders, daily_at=time(10, 0))]
