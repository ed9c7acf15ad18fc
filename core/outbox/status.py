"""How the outbox stands: per municipality, what waits to be relayed and since when (``tsunagu outbox status``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec
from sqlalchemy import and_, func, select

from core.db.base import utcnow
from core.outbox.models import OutboxMessage

if TYPE_CHECKING:
    from core.platform import Platform


class OutboxStatus(msgspec.Struct, kw_only=True, frozen=True):
    municipality: str
    pending: int
    """Not yet relayed: due now, timers not yet due, and messages set aside after a failed relay."""
    due: int
    """Pending and due now: what the relay should be sending. Growing means no relay runs or the broker is away."""
    failing: int
    """Pending after failed relay attempts of their own (an unknown job): see ``last_error``."""
    relayed: int
    oldest_due_seconds: float | None
    """How long the oldest due message has been waiting, or ``None`` when nothing is due."""


async def outbox_status(platform: Platform, slug: str | None = None) -> list[OutboxStatus]:
    """One line per municipality (or for ``slug`` only), from the snapshot's municipalities.

    :raises NotFound: if ``slug`` names no municipality.
    """
    municipalities = (
        [platform.municipality(slug)]
        if slug
        else sorted(platform.snapshot.by_id.values(), key=lambda m: m.code)
    )
    now = utcnow()
    pending = OutboxMessage.relayed_at.is_(None)
    due = and_(pending, OutboxMessage.not_before <= now)
    statement = select(
        OutboxMessage.municipality_id,
        func.count().filter(pending),
        func.count().filter(due),
        func.count().filter(and_(pending, OutboxMessage.attempts > 0)),
        func.count().filter(OutboxMessage.relayed_at.is_not(None)),
        func.min(OutboxMessage.not_before).filter(due),
    ).group_by(OutboxMessage.municipality_id)
    async with platform.sessions.platform() as session:
        rows = {row[0]: row[1:] for row in await session.execute(statement)}
    found = []
    for m in municipalities:
        counts = rows.get(m.id, (0, 0, 0, 0, None))
        oldest = counts[4]
        found.append(
            OutboxStatus(
                municipality=m.slug,
                pending=counts[0],
                due=counts[1],
                failing=counts[2],
                relayed=counts[3],
                oldest_due_seconds=None if oldest is None else round((now - oldest).total_seconds(), 1),
            )
        )
    return found
