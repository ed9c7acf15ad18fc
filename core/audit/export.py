"""Export: a municipality's sealed audit events, oldest first, streamed in batches (never all in memory).

Each event comes with its place in the chain and both MACs, so that someone holding the key can check an export
on its own. Batches are read in short transactions of their own (keyset on ``(recorded_at, id)``), so a long
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
from core.audit.sealing import seal

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


def _sealed_in(municipality_id: int, since: datetime | None, until: datetime | None) -> list[Any]:
    where: list[Any] = [AuditEvent.municipality_id == municipality_id]
    if since is not None:
        where.append(AuditEvent.recorded_at >= since)
    if until is not None:
        where.append(AuditEvent.recorded_at < until)
    return where


def _joined(columns: Any) -> Any:
    return select(*columns).join(
        AuditChainEntry,
        and_(
            AuditChainEntry.municipality_id == AuditEvent.municipality_id,
            AuditChainEntry.event_id == AuditEvent.id,
        ),
    )


async def count_events(
    platform: Platform, municipality_id: int, *, since: datetime | None = None, until: datetime | None = None
) -> int:
    """How many sealed events :func:`export_events` would give (for a progress bar)."""
    async with platform.sessions.tenant(municipality_id) as session:
        query = _joined([func.count()]).where(*_sealed_in(municipality_id, since, until))
        return int(await session.scalar(query) or 0)


async def export_events(
    platform: Platform,
    municipality_id: int,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    seal_first: bool = True,
) -> AsyncIterator[ExportedEvent]:
    """The sealed events recorded in ``[since, until)``, by ``(recorded_at, id)``; seals everything first."""
    if seal_first:
        await seal(platform, municipality_id)
    after: tuple[datetime, uuid.UUID] | None = None
    while True:
        async with platform.sessions.tenant(municipality_id) as session:
            query = _joined([AuditEvent, AuditChainEntry.seq, AuditChainEntry.chain_mac]).where(
                *_sealed_in(municipality_id, since, until)
            )
            if after is not None:
                query = query.where(
                    or_(
                        AuditEvent.recorded_at > after[0],
                        and_(AuditEvent.recorded_at == after[0], AuditEvent.id > after[1]),
                    )
                )
            rows = (
                await session.execute(
                    query.order_by(AuditEvent.recorded_at, AuditEvent.id).limit(EXPORT_BATCH)
                )
            ).all()
            session.expunge_all()
        for event, seq, chain in rows:
            yield ExportedEvent(
                seq=seq,
                id=event.id,
                recorded_at=event.recorded_at,
                actor=event.actor,
                action=event.action,
                target_type=event.target_type,
                target_id=event.target_id,
                payload=event.payload,
                mac=event.mac,
                chain_mac=chain,
            )
        if len(rows) < EXPORT_BATCH:
            return
        last = rows[-1][0]
        after = (last.recorded_at, last.id)
