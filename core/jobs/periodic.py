"""Periodic jobs: each fires once per period in each municipality where its plugin is enabled.

Every app and worker process runs a :class:`PeriodicScheduler`. When a period begins, each scheduler tries to
claim it by moving the job's :class:`~core.jobs.models.PeriodicClaim` row forward; the database lets exactly one
succeed, and that one queues the job through the outbox in the same transaction (key
``periodic:<job>:<period start>``). A period that began while no process was running is caught up once, when one
starts; periods missed entirely in between are not replayed.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import msgspec
import structlog
from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite

from core.db.base import utcnow
from core.exceptions import ImproperlyConfigured
from core.jobs._context import job_options
from core.jobs.models import PeriodicClaim
from core.outbox import send_later
from core.plugins.manager import CORE_PLUGIN_NAME

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from core.platform import Platform
    from core.tenancy.registry import Municipality

log = structlog.get_logger(__name__)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DEFAULT_TICK = 1.0


class Periodic(msgspec.Struct, kw_only=True, frozen=True):
    """A job to run once per period: every ``every`` (periods aligned to the Unix epoch, UTC), or once a day at
    ``daily_at`` in the municipality's time zone. Give exactly one."""

    job: Any
    """A function marked with ``@core.jobs.job``, also returned from the plugin's ``register_actors``."""
    every: timedelta | None = None
    daily_at: time | None = None

    def __post_init__(self) -> None:
        name = getattr(self.job, "__name__", repr(self.job))
        if job_options(self.job) is None:
            raise ImproperlyConfigured(f"Periodic job {name} must be marked with @core.jobs.job")
        if (self.every is None) == (self.daily_at is None):
            raise ImproperlyConfigured(f"Periodic job {name}: give exactly one of every= and daily_at=")
        if self.every is not None and self.every < timedelta(seconds=1):
            raise ImproperlyConfigured(
                f"Periodic job {name}: every must be at least 1 second, got {self.every}"
            )
        if self.daily_at is not None and self.daily_at.tzinfo is not None:
            raise ImproperlyConfigured(
                f"Periodic job {name}: daily_at is a wall-clock time in the municipality's zone; give no tzinfo"
            )

    def period_start(self, now: datetime, timezone: str) -> datetime:
        """The start (UTC) of the period ``now`` falls in."""
        if self.every is not None:
            return EPOCH + ((now - EPOCH) // self.every) * self.every
        assert self.daily_at is not None
        zone = ZoneInfo(timezone)
        local = now.astimezone(zone)
        start = datetime.combine(local.date(), self.daily_at, tzinfo=zone)
        if start > local:
            start = datetime.combine(local.date() - timedelta(days=1), self.daily_at, tzinfo=zone)
        return start.astimezone(UTC)


class ScheduledJob(msgspec.Struct, kw_only=True, frozen=True):
    plugin: str
    name: str
    periodic: Periodic


def collect_periodic(platform: Platform) -> list[ScheduledJob]:
    """Every plugin's periodic jobs; a plugin whose hook fails or returns a job it does not register is left out."""
    registered = set(platform.jobs.actors) if platform.jobs is not None else None
    found = []
    for impl in platform.plugins.pm.hook.register_periodic_jobs.get_hookimpls():
        plugin = impl.plugin_name
        try:
            entries = list(impl.function() or [])
            if not all(isinstance(e, Periodic) for e in entries):
                raise TypeError("register_periodic_jobs must return core.jobs.Periodic objects")
        except Exception:
            if plugin == CORE_PLUGIN_NAME:
                raise
            log.exception("plugin.hook_failed", plugin=plugin, hook="register_periodic_jobs")
            continue
        for entry in entries:
            name = f"{plugin}.{entry.job.__name__}"
            if registered is not None and name not in registered:
                log.error("plugin.periodic_job_unregistered", plugin=plugin, job=name)
                continue
            found.append(ScheduledJob(plugin=plugin, name=name, periodic=entry))
    return found


async def claim_period(session: AsyncSession, municipality_id: int, job: str, period_start: datetime) -> bool:
    """Claim one period of one job in the session's transaction; ``True`` for exactly one claimant."""
    now = utcnow()
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    inserted = await session.execute(
        insert(PeriodicClaim)
        .values(municipality_id=municipality_id, job=job, period_start=period_start, claimed_at=now)
        .on_conflict_do_nothing(index_elements=["municipality_id", "job"])
    )
    if inserted.rowcount:  # type: ignore[attr-defined]
        return True
    moved = await session.execute(
        update(PeriodicClaim)
        .where(PeriodicClaim.job == job, PeriodicClaim.period_start < period_start)
        .values(period_start=period_start, claimed_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(moved.rowcount)  # type: ignore[attr-defined]


def periodic_key(job: str, period_start: datetime) -> str:
    return f"periodic:{job}:{period_start.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"


class PeriodicScheduler:
    """Queues each periodic job once per period per municipality; safe to run in any number of processes."""

    def __init__(self, platform: Platform, *, tick: float = DEFAULT_TICK) -> None:
        self.platform = platform
        self.tick = tick
        self.jobs = collect_periodic(platform)
        self._done: dict[tuple[int, str], datetime] = {}
        """Periods this process has seen claimed (by anyone): no need to ask the database again."""
        self._task: asyncio.Task[None] | None = None

    async def run_once(self, now: datetime | None = None) -> list[tuple[str, str, datetime]]:
        """Claim and queue every period that is due. Returns what this process queued: (slug, job, start)."""
        now = now or utcnow()
        queued = []
        snapshot = self.platform.snapshot
        for municipality in snapshot.by_id.values():
            enabled = snapshot.enabled.get(municipality.id, frozenset())
            for scheduled in self.jobs:
                if scheduled.plugin != CORE_PLUGIN_NAME and scheduled.plugin not in enabled:
                    continue
                start = scheduled.periodic.period_start(now, municipality.timezone)
                if self._done.get((municipality.id, scheduled.name)) == start:
                    continue
                if await self._claim(municipality, scheduled.name, start):
                    queued.append((municipality.slug, scheduled.name, start))
                self._done[(municipality.id, scheduled.name)] = start
        return queued

    async def _claim(self, municipality: Municipality, job: str, start: datetime) -> bool:
        async with self.platform.sessions.tenant(municipality.id) as session:
            if not await claim_period(session, municipality.id, job, start):
                return False
            await send_later(session, job, key=periodic_key(job, start))
        log.info("periodic.queued", municipality=municipality.slug, job=job, period_start=start.isoformat())
        return True

    def start(self) -> None:
        if self.jobs and self._task is None:
            self._task = asyncio.create_task(self._run_forever(), name="tsunagu-periodic-scheduler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run_forever(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:  # the database may be away; the next tick tries again
                log.warning("periodic.tick_failed", exc_info=True)
            await asyncio.sleep(self.tick)
