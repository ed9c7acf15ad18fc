"""Sealing: appending committed events to their municipality's chain, after the fact, one writer at a time.

Writers only insert events (:func:`core.audit.record`); nothing they do waits on a chain head. The sealer picks
up committed events that have no chain entry yet and appends them, in ``(recorded_at, id)`` order within each
batch, holding the municipality's sealing lock: on PostgreSQL ``pg_try_advisory_xact_lock`` (a municipality
another process is sealing is skipped), on SQLite the write lock every transaction takes. So the chain's order
is the order of sealing: an event whose transaction committed late is sealed after events recorded later.

An event whose MAC does not match its content was not written by :func:`record` (or was edited before it was
sealed): it is never sealed, and verification reports it.

:class:`Sealer` runs in each app process (started by the app's lifespan): every ``interval`` seconds, in one
short transaction for every municipality, it seals the events of the last few seconds (when this process
recorded any; otherwise it looks every few seconds, for other processes' events); every minute it sweeps
the last quarter of an hour (transactions that took long to commit), and its first sweep looks back a week.
Verification, export and purge first seal everything of their municipality (:func:`seal` with no ``since``).
An unsealed event is still covered by its own MAC (an edit shows); what sealing adds is that it can no longer
be deleted, reordered or left out unnoticed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import and_, exists, insert, or_, select, text

from core.audit.keys import AuditKeys
from core.audit.macs import GENESIS, chain_mac, mac_of, same
from core.audit.models import AuditChainEntry, AuditEvent
from core.db.base import utcnow

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from core.platform import Platform

log = structlog.get_logger(__name__)

LOCK_CLASS = 0x74737561  # "tsua": the first key of the sealer's advisory lock; the second is the municipality
BATCH = 2000
RECENT = timedelta(seconds=5)
"""What each tick looks at: events recorded this recently (a transaction that took longer to commit is sealed
by the next sweep). Kept short: each tick's cost grows with the events recorded in this window."""
IDLE_POLL = 5.0
"""Seconds between looks when this process recorded nothing: other processes' events (the CLI's, another app
process's whose sealer is busy) are sealed within this; this process's within ``interval``."""
SWEEP_LOOKBACK = timedelta(minutes=15)
SWEEP_EVERY = 60.0
"""Seconds between sweeps of the last :data:`SWEEP_LOOKBACK`."""
START_LOOKBACK = timedelta(days=7)
"""The first sweep of a process looks this far back (events recorded while no app was running)."""

EVENT_COLUMNS = (
    AuditEvent.municipality_id,
    AuditEvent.id,
    AuditEvent.recorded_at,
    AuditEvent.actor,
    AuditEvent.action,
    AuditEvent.target_type,
    AuditEvent.target_id,
    AuditEvent.payload,
    AuditEvent.mac,
)
_reported: OrderedDict[uuid.UUID, None] = OrderedDict()
"""Events already logged as unsealable by this process, so a bad row is reported once, not every tick."""


def _has_no_entry() -> Any:
    return ~exists().where(
        AuditChainEntry.municipality_id == AuditEvent.municipality_id,
        AuditChainEntry.event_id == AuditEvent.id,
    )


def unsealed(municipality_id: int) -> Any:
    """The condition "this event of ``municipality_id`` has no chain entry"."""
    return and_(AuditEvent.municipality_id == municipality_id, _has_no_entry())


async def try_locks(session: AsyncSession, municipality_ids: Sequence[int]) -> list[int]:
    """Those of ``municipality_ids`` whose sealing lock this transaction got (others are being sealed)."""
    if session.bind.dialect.name != "postgresql":
        return list(municipality_ids)  # the transaction's BEGIN IMMEDIATE already holds SQLite's only lock
    result = await session.execute(
        text("SELECT m FROM unnest(CAST(:ids AS integer[])) AS m WHERE pg_try_advisory_xact_lock(:c, m)"),
        {"ids": list(municipality_ids), "c": LOCK_CLASS},
    )
    return sorted(result.scalars())


async def lock(session: AsyncSession, municipality_id: int) -> None:
    """Take the sealer's lock for one municipality until the transaction ends, waiting for another holder."""
    if session.bind.dialect.name != "postgresql":
        await session.execute(text("SELECT 1"))  # begins the transaction: BEGIN IMMEDIATE is SQLite's lock
        return
    await session.execute(
        text("SELECT pg_advisory_xact_lock(:c, :m)"), {"c": LOCK_CLASS, "m": municipality_id}
    )


_HEADS = {
    # The ids travel as one parameter, so the statement has one shape however many municipalities a batch
    # spans: compiled once. (A UNION of one probe each would be built and compiled for every batch size, fill
    # the statement cache with one entry per size, and SQLite refuses one of more than 500 parts.)
    "postgresql": text(
        "SELECT ids.m AS municipality_id, c.seq, c.chain_mac "
        "FROM unnest(CAST(:ids AS integer[])) AS ids(m) "
        "CROSS JOIN LATERAL (SELECT seq, chain_mac FROM audit_chain WHERE municipality_id = ids.m "
        "ORDER BY seq DESC LIMIT 1) AS c"
    ),
    "sqlite": text(
        "SELECT c.municipality_id, c.seq, c.chain_mac FROM json_each(:ids) AS ids "
        "JOIN audit_chain AS c ON c.municipality_id = ids.value AND c.seq = "
        "(SELECT seq FROM audit_chain WHERE municipality_id = ids.value ORDER BY seq DESC LIMIT 1)"
    ),
}


async def heads(session: AsyncSession, municipality_ids: Sequence[int]) -> dict[int, tuple[int, str]]:
    """The last chain entry's ``(seq, chain_mac)`` of each municipality that has one: one index probe each,
    however long the chains (a ``GROUP BY`` would read them whole)."""
    if not municipality_ids:
        return {}
    ids = [int(m) for m in municipality_ids]
    dialect = session.bind.dialect.name
    rows = await session.execute(
        _HEADS[dialect], {"ids": ids if dialect == "postgresql" else json.dumps(ids)}
    )
    return {r.municipality_id: (r.seq, r.chain_mac) for r in rows}


async def head(session: AsyncSession, municipality_id: int) -> tuple[int, str]:
    """The last chain entry's ``(seq, chain_mac)``, or ``(0, GENESIS)`` for an empty chain."""
    return (await heads(session, [municipality_id])).get(municipality_id, (0, GENESIS))


async def seal_batch(
    session: AsyncSession,
    keys: AuditKeys,
    municipality_ids: Sequence[int],
    *,
    since: datetime | None = None,
    after: tuple[datetime, uuid.UUID] | None = None,
    start: tuple[int, str] | None = None,
) -> tuple[int, tuple[datetime, uuid.UUID] | None]:
    """Seal up to :data:`BATCH` unsealed events of ``municipality_ids`` in the session's transaction; the
    caller holds their locks.

    ``start`` is the ``(seq, chain_mac)`` to continue from when a chain is empty but has a history (the purge's
    anchor). Returns how many were sealed and, when the batch was full, the key of its last event: pass it back
    as ``after`` for the next batch. ``None`` means nothing more was waiting when the batch was read (events
    committed since are the next tick's: chasing them here would seal them one by one, at great cost).
    """
    query = select(*EVENT_COLUMNS).where(AuditEvent.municipality_id.in_(municipality_ids), _has_no_entry())
    if since is not None:
        query = query.where(AuditEvent.recorded_at >= since)
    if after is not None:
        query = query.where(
            or_(
                AuditEvent.recorded_at > after[0],
                and_(AuditEvent.recorded_at == after[0], AuditEvent.id > after[1]),
            )
        )
    events = (await session.execute(query.order_by(AuditEvent.recorded_at, AuditEvent.id).limit(BATCH))).all()
    if not events:
        return 0, None
    tips = await heads(session, sorted({e.municipality_id for e in events}))
    rows = []
    for event in events:
        mac = mac_of(keys.mac_key, event)
        if not same(mac, event.mac):
            _report_unsealable(event.municipality_id, event.id)
            continue
        seq, previous = tips.get(event.municipality_id) or start or (0, GENESIS)
        seq += 1
        previous = chain_mac(
            keys.mac_key,
            municipality_id=event.municipality_id,
            seq=seq,
            previous=previous,
            event_id=event.id,
            event_mac=mac,
        )
        tips[event.municipality_id] = (seq, previous)
        rows.append(
            {
                "municipality_id": event.municipality_id,
                "seq": seq,
                "event_id": event.id,
                "chain_mac": previous,
            }
        )
    if rows:
        await session.execute(insert(AuditChainEntry.__table__), rows)  # Core: many rows, one statement
    last = events[-1]
    return len(rows), (last.recorded_at, last.id) if len(events) == BATCH else None


def _report_unsealable(municipality_id: int, event_id: uuid.UUID) -> None:
    if event_id in _reported:
        return
    _reported[event_id] = None
    if len(_reported) > 10_000:
        _reported.popitem(last=False)
    log.error(
        "audit.event_unsealable",
        municipality=municipality_id,
        event_id=str(event_id),
        detail="its MAC does not match its content: not written by record(), or edited; run tsunagu audit verify",
    )


async def _seal_locked(
    session: AsyncSession, keys: AuditKeys, municipality_ids: Sequence[int], since: datetime | None
) -> int:
    total, after = 0, None
    while True:
        sealed, after = await seal_batch(session, keys, municipality_ids, since=since, after=after)
        total += sealed
        if after is None:
            return total


async def seal(platform: Platform, municipality_id: int, *, since: datetime | None = None) -> int:
    """Seal every committed, unsealed event of one municipality (recorded at or after ``since``, if given),
    waiting for another sealer of it to finish first. Returns how many events it sealed."""
    async with platform.sessions.tenant(municipality_id) as session:
        await lock(session, municipality_id)
        return await _seal_locked(session, platform.audit_keys, [municipality_id], since)


class Sealer:
    """Seals in the background, in the app process: started and stopped by the app's lifespan."""

    def __init__(self, platform: Platform, interval: float = 0.5) -> None:
        self.platform = platform
        self.interval = interval
        self._task: asyncio.Task[None] | None = None
        self._next_sweep = self._next_look = 0.0
        self._started = False
        self._stopping = asyncio.Event()

    async def tick(self) -> int:
        """One round, one transaction: seal the recent events of every municipality (further back when a sweep
        is due). Municipalities another process is sealing are left to it. Skipped while this process recorded
        nothing, except every :data:`IDLE_POLL` seconds."""
        now = time.monotonic()
        keys = self.platform.audit_keys
        if not keys.recorded and now < self._next_look and now < self._next_sweep:
            return 0  # an idle process does not query the database twice a second (on SQLite: take its lock)
        keys.recorded, self._next_look = False, now + IDLE_POLL
        lookback = RECENT
        if now >= self._next_sweep:
            lookback = SWEEP_LOOKBACK if self._started else START_LOOKBACK
            self._next_sweep, self._started = now + SWEEP_EVERY, True
        since = utcnow() - lookback
        ids = sorted(self.platform.snapshot.by_id)
        if not ids:
            return 0
        async with self.platform.sessions.platform() as session:
            locked = await try_locks(session, ids)  # cheap; then one read finds what to seal in all of them
            if not locked:
                return 0
            return await _seal_locked(session, self.platform.audit_keys, locked, since)

    def start(self) -> None:
        if self._task is None:
            self._stopping = asyncio.Event()
            self._task = asyncio.create_task(self._run(), name="tsunagu-audit-sealer")

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.tick()
            except Exception:  # the database may come back; events wait, unsealed, until then
                log.warning("audit.seal_failed", exc_info=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.interval)

    async def stop(self, timeout: float = 5.0) -> None:
        """Let the tick under way finish (its transaction commits), then stop; cancel it after ``timeout``."""
        if self._task is None:
            return
        self._stopping.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout)
        except TimeoutError:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None
