"""Export: a municipality's sealed audit events, oldest first, streamed in batches (never all in memory).

Each event comes with its place in the chain and both MACs, so that someone holding the key can check an export
on its own. Events not sealed (forged ones, which the sealer refuses) are left out. Batches are read in short transactions of their own (keyset on ``(recorded_at, id)``), so a long
export never holds a transaction open (on SQLite that would stop every writer).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

import msgspec
from sqlalchemy import and_, func, or_, select

from core.audit.models import AuditChainEntry, AuditEvent
from core.audit.sealing import EVENT_COLUMNS, seal

if TYPE_CHECKING:
    from core.platform import Platform

EXPORT_BATCH = 1000


class ExportedEvent(msgspec.Struct, kw_only=True, frozen=True):
    seq: int
    id: uuid.UUID
    recorded_at: datetime
    actor: str
    action: str
    target_type: str
    target_id: str
    payload: dict[str, Any]
    mac: str
    chain_mac: str


def _recorded_in(municipality_id: int, since: datetime | None, until: datetime | None) -> list[Any]:
    where: list[Any] = [AuditEvent.municipality_id == municipality_id]
    if since is not None:
        where.append(AuditEvent.recorded_at >= since)
    if until is not None:
        where.append(AuditEvent.recorded_at < until)
    return where


async def count_events(
    platform: Platform, municipality_id: int, *, since: datetime | None = None, until: datetime | None = None
) -> int:
    """How many events were recorded in ``[since, until)`` (what an export gives, give or take the few not
    sealed yet): the total of a progress bar."""
    async with platform.sessions.tenant(municipality_id) as session:
        query = (
            select(func.count()).select_from(AuditEvent).where(*_recorded_in(municipality_id, since, until))
        )
        return int(await session.scalar(query) or 0)


async def export_events(
    platform: Platform,
    municipality_id: int,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    seal_first: bool = True,
) -> AsyncIterator[ExportedEvent]:
    """The sealed events recorded in ``[since, until)``, by ``(recorded_at, id)``; seals everything first.

    Each batch is two plain reads (events by time, then their chain entries by key), not a join whose plan
    could go wrong while the planner's statistics lag behind a freshly filled table."""
    if seal_first:
        await seal(platform, municipality_id)
    after: tuple[datetime, uuid.UUID] | None = None
    while True:
        async with platform.sessions.tenant(municipality_id) as session:
            query = select(*EVENT_COLUMNS).where(*_recorded_in(municipality_id, since, until))
            if after is not None:
                query = query.where(
                    or_(
                        AuditEvent.recorded_at > after[0],
                        and_(AuditEvent.recorded_at == after[0], AuditEvent.id > after[1]),
                    )
                )
            query = query.order_by(AuditEvent.recorded_at, AuditEvent.id).limit(EXPORT_BATCH)
            events = (await session.execute(query)).all()
            entries = {}
            if events:
                found = await session.execute(
                    select(AuditChainEntry.event_id, AuditChainEntry.seq, AuditChainEntry.chain_mac).where(
                        AuditChainEntry.municipality_id == municipality_id,
                        AuditChainEntry.event_id.in_([e.id for e in events]),
                    )
                )
                entries = {entry.event_id: entry for entry in found}
        for event in events:
            entry = entries.get(event.id)
            if entry is None:  # not sealed: forged, or committed after the seal above
                continue
            yield ExportedEvent(
                seq=entry.seq,
                id=event.id,
                recorded_at=event.recorded_at,
                actor=event.actor,
                action=event.action,
                target_type=event.target_type,
                target_id=event.target_id,
                payload=event.payload,
                mac=event.mac,
                chain_mac=entry.chain_mac,
            )
        if len(events) < EXPORT_BATCH:
            return
        after = (events[-1].recorded_at, events[-1].id)
