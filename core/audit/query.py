"""Searching one municipality's audit log: by actor, action, target and time; newest first, keyset pages."""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

import msgspec
from sqlalchemy import and_, or_, select

from core.audit.models import AuditChainEntry, AuditEvent
from core.audit.sealing import EVENT_COLUMNS
from core.exceptions import InvalidInput

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

MAX_LIMIT = 500
DEFAULT_LIMIT = 50


class AuditEventOut(msgspec.Struct, kw_only=True, frozen=True):
    id: uuid.UUID
    recorded_at: datetime
    actor: str
    action: str
    target_type: str
    target_id: str
    payload: dict[str, Any]
    seq: int | None
    """Its place in the chain; ``None`` until the sealer has sealed it (within about a second)."""


class AuditEventPage(msgspec.Struct, kw_only=True, frozen=True):
    items: list[AuditEventOut]
    next_cursor: str | None
    """Pass as ``cursor`` for the next (older) page; ``None`` on the last page."""


class AuditFilter(msgspec.Struct, kw_only=True, frozen=True):
    actor: str | None = None
    action: str | None = None
    """Exact, or ``<plugin>.*`` for every action of a plugin."""
    target_type: str | None = None
    target_id: str | None = None
    since: datetime | None = None
    """Inclusive."""
    until: datetime | None = None
    """Exclusive."""


def encode_cursor(recorded_at: datetime, event_id: uuid.UUID) -> str:
    raw = f"{recorded_at.isoformat()}|{event_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """:raises InvalidInput: not a cursor this API gave out."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        moment, _, event_id = raw.partition("|")
        at = datetime.fromisoformat(moment)
        if at.tzinfo is None:
            raise ValueError("naive")
        return at, uuid.UUID(event_id)
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise InvalidInput(f"cursor {cursor[:60]!r} is not one this API gave out") from None


def _conditions(found: AuditFilter) -> list[Any]:
    where: list[Any] = []
    for name in ("since", "until"):
        value = getattr(found, name)
        if value is not None and value.tzinfo is None:
            raise InvalidInput(f"{name} must include a time zone offset (2026-04-01T09:00:00+09:00 or ...Z)")
    if found.actor is not None:
        where.append(AuditEvent.actor == found.actor)
    if found.action is not None:
        if found.action.endswith(".*"):
            where.append(AuditEvent.action.startswith(found.action[:-1], autoescape=True))
        else:
            where.append(AuditEvent.action == found.action)
    if found.target_type is not None:
        where.append(AuditEvent.target_type == found.target_type)
    if found.target_id is not None:
        where.append(AuditEvent.target_id == found.target_id)
    if found.since is not None:
        where.append(AuditEvent.recorded_at >= found.since)
    if found.until is not None:
        where.append(AuditEvent.recorded_at < found.until)
    return where


async def search_events(
    session: AsyncSession, found: AuditFilter, *, limit: int = DEFAULT_LIMIT, cursor: str | None = None
) -> AuditEventPage:
    """One page of the session's municipality's events matching ``found``, newest first.

    :raises InvalidInput: a limit outside 1 to 500, a time without a zone, a cursor not given out here.
    """
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}, got {limit}")
    query = select(*EVENT_COLUMNS).where(*_conditions(found))
    if cursor is not None:
        at, event_id = decode_cursor(cursor)
        query = query.where(
            or_(AuditEvent.recorded_at < at, and_(AuditEvent.recorded_at == at, AuditEvent.id < event_id))
        )
    query = query.order_by(AuditEvent.recorded_at.desc(), AuditEvent.id.desc()).limit(limit + 1)
    rows = (await session.execute(query)).all()
    seqs: dict[uuid.UUID, int] = {}
    if rows:  # a second plain read rather than a join: see core.audit.export
        found_entries = await session.execute(
            select(AuditChainEntry.event_id, AuditChainEntry.seq).where(
                AuditChainEntry.municipality_id.in_({r.municipality_id for r in rows[:limit]}),
                AuditChainEntry.event_id.in_([r.id for r in rows[:limit]]),
            )
        )
        seqs = {entry.event_id: entry.seq for entry in found_entries}
    items = [
        AuditEventOut(
            id=event.id,
            recorded_at=event.recorded_at,
            actor=event.actor,
            action=event.action,
            target_type=event.target_type,
            target_id=event.target_id,
            payload=event.payload,
            seq=seqs.get(event.id),
        )
        for event in rows[:limit]
    ]
    more = len(rows) > limit
    return AuditEventPage(
        items=items, next_cursor=encode_cursor(items[-1].recorded_at, items[-1].id) if more else None
    )
