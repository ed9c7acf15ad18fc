"""A throwaway plugin for the job tests, loaded in-process or by real ``tsunagu`` processes (entry point).

- ``POST /probe/items {"marker": ...}`` queues ``probe.effect`` through the outbox, keyed by the marker.
- ``probe.effect`` appends the marker to ``TSUNAGU_PROBE_RUNS`` (when set) each time it starts, then records one
  audit event ``probe.effect`` per marker, at most once (``ctx.once``). With ``hold``, its first run then waits
  that many seconds before finishing: a window for killing the worker after the effect, before the ack. Each
  run that finishes appends ``<marker> done``.
- ``probe.tick`` records ``probe.tick`` once per message; it is periodic (``every`` ``TSUNAGU_PROBE_PERIOD``
  seconds) only when that variable is set.
Jobs use the queue ``TSUNAGU_PROBE_QUEUE`` (default ``default``).
"""

from __future__ import annotations

import asyncio
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import msgspec
from litestar import post
from litestar.params import JSONBody

from core import Plugin, PluginMeta, Title, hookimpl
from core.audit import record
from core.http.dependencies import DbSession
from core.jobs import JobContext, Periodic, job
from core.outbox import send_later

QUEUE = os.environ.get("TSUNAGU_PROBE_QUEUE", "default")


class Item(msgspec.Struct, kw_only=True, frozen=True):
    marker: str
    hold: float = 0.0


class Queued(msgspec.Struct, kw_only=True, frozen=True):
    marker: str
    queued: bool


def runs_of(path: Path, marker: str) -> int:
    if not path.exists():
        return 0
    return path.read_text(encoding="utf-8").splitlines().count(marker)


@job(queue=QUEUE, max_retries=3, min_backoff_ms=100, max_backoff_ms=1000)
async def effect(ctx: JobContext, marker: str, hold: float = 0.0) -> None:
    runs = os.environ.get("TSUNAGU_PROBE_RUNS")
    if runs:
        with open(runs, "a", encoding="utf-8") as sink:
            sink.write(f"{marker}\n")
            sink.flush()
            os.fsync(sink.fileno())
    async with ctx.session() as session:
        if await ctx.once(session):
            record(
                session,
                actor="job:probe.effect",
                action="probe.effect",
                target_type="probe",
                target_id=marker,
            )
    if hold and runs and runs_of(Path(runs), marker) == 1:
        await asyncio.sleep(hold)
    if runs:
        with open(runs, "a", encoding="utf-8") as sink:
            sink.write(f"{marker} done\n")


@job(queue=QUEUE, max_retries=3, min_backoff_ms=100, max_backoff_ms=1000)
async def tick(ctx: JobContext) -> None:
    async with ctx.session() as session:
        if await ctx.once(session):
            record(
                session,
                actor="job:probe.tick",
                action="probe.tick",
                target_type="period",
                target_id=str(ctx.message_key),
            )


@post("/items", status_code=202)
async def queue_item(db_session: DbSession, data: JSONBody[Item]) -> Queued:
    queued = await send_later(db_session, "probe.effect", key=data.marker, marker=data.marker, hold=data.hold)
    return Queued(marker=data.marker, queued=queued)


class Probe(Plugin):
    meta = PluginMeta(name="probe", version="1.0", title=Title(ja="試験", en="Probe"))

    @hookimpl
    def register_actors(self) -> list[Any]:
        return [effect, tick]

    @hookimpl
    def register_routes(self) -> list[Any]:
        return [queue_item]

    @hookimpl
    def register_periodic_jobs(self) -> list[Periodic]:
        period = os.environ.get("TSUNAGU_PROBE_PERIOD")
        return [Periodic(job=tick, every=timedelta(seconds=float(period)))] if period else []


plugin = Probe()
