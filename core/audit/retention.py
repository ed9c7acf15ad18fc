"""Retention: how long a municipality keeps its audit log, and the purge — the one sanctioned deletion.

Nothing is ever deleted unless the municipality has set a retention (``tsunagu audit retention``), and then only
by an explicit ``tsunagu audit purge`` (run it from cron if you want it regular): there is no default deletion.

A purge removes a prefix of the chain: every entry, and its event, up to the last one recorded before the cutoff
(``through_seq``). It first verifies the whole log and refuses if it does not verify, so evidence of tampering is
never purged away. In one transaction, holding the sealer's lock, it lifts the append-only guard for that
transaction only (PostgreSQL: ``tsunagu.audit_purge``; SQLite: the DELETE triggers are dropped and created again),
deletes, and records a ``core.audit_purged`` event whose payload names the range and the last purged chain MAC
(the anchor), then seals it. Verification continues from the anchor of the latest genuine purge event.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import msgspec
from sqlalchemy import and_, delete, func, select, text

from core.audit.macs import timestamp
from core.audit.models import AuditChainEntry, AuditEvent, AuditSettingsRow
from core.audit.recording import flush_events, record
from core.audit.schema import APPEND_ONLY_TABLES, PURGE_SETTING, sqlite_trigger_name, sqlite_trigger_sql
from core.audit.sealing import head, lock, seal_batch
from core.audit.verification import LOG_TARGET, PURGE_ACTION, AuditLogTampered, purge_anchor, verify
from core.db.base import utcnow
from core.exceptions import InvalidInput

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from core.platform import Platform
    from core.tenancy.registry import Municipality

MAX_RETENTION_DAYS = 36_500


class PurgeResult(msgspec.Struct, kw_only=True, frozen=True):
    events: int
    """Events removed (0: nothing was older than the cutoff)."""
    from_seq: int
    through_seq: int
    anchor_chain_mac: str
    event_id: str | None
    """The ``core.audit_purged`` event that records it."""


async def get_retention(platform: Platform, municipality: Municipality) -> int | None:
    """Days the municipality keeps its audit log, or ``None``: forever (the default)."""
    async with platform.sessions.tenant(municipality.id) as session:
        row = await session.get(AuditSettingsRow, municipality.id)
        return None if row is None else row.retention_days


async def set_retention(
    platform: Platform, municipality: Municipality, days: int | None, *, actor: str = "cli"
) -> tuple[int | None, int | None]:
    """Set (or with ``None`` switch off) the retention; recorded as ``core.audit_retention_changed``.
    Returns ``(before, after)``.

    :raises InvalidInput: ``days`` outside 1 to 36500.
    """
    if days is not None and not 1 <= days <= MAX_RETENTION_DAYS:
        raise InvalidInput(f"--days must be between 1 and {MAX_RETENTION_DAYS}, got {days}")
    async with platform.sessions.tenant(municipality.id) as session:
        row = await session.get(AuditSettingsRow, municipality.id)
        before = None if row is None else row.retention_days
        if before == days:
            return before, days
        if row is None:
            session.add(AuditSettingsRow(municipality_id=municipality.id, retention_days=days))
        else:
            row.retention_days = days
        record(
            session,
            actor=actor,
            action="core.audit_retention_changed",
            target_type=LOG_TARGET,
            target_id=municipality.slug,
            payload={"retention_days": days, "previous": before},
        )
    return before, days


async def purge(
    platform: Platform,
    municipality: Municipality,
    before: datetime,
    *,
    actor: str = "cli",
    now: datetime | None = None,
) -> PurgeResult:
    """Remove the entries recorded before ``before`` (see the module docstring).

    :raises InvalidInput: no retention is set, or ``before`` is inside the retention period.
    :raises AuditLogTampered: the log does not verify; nothing is removed.
    """
    now = now or utcnow()
    days = await get_retention(platform, municipality)
    if days is None:
        raise InvalidInput(
            f"{municipality.slug} keeps its audit log forever (no retention set; see: tsunagu audit retention): "
            "nothing purged"
        )
    if before.tzinfo is None:
        raise InvalidInput("the purge cutoff must have a time zone")
    limit = now - timedelta(days=days)
    if before > limit:
        zone = ZoneInfo(municipality.timezone)
        raise InvalidInput(
            f"{municipality.slug} keeps its audit log for {days} days: entries recorded after "
            f"{limit.astimezone(zone).isoformat(timespec='seconds')} may not be purged yet, "
            f"got {before.astimezone(zone).isoformat(timespec='seconds')}"
        )
    report = await verify(platform, municipality.id)
    if not report.ok:
        first = report.first.describe() if report.first else "?"
        raise AuditLogTampered(
            f"{municipality.slug}: the audit log does not verify ({first}): nothing purged"
        )
    keys = platform.audit_keys
    async with platform.sessions.tenant(municipality.id) as session:
        await lock(session, municipality.id)
        start = await purge_anchor(session, keys, municipality.id)
        through = await _last_before(session, municipality.id, before)
        if through <= start[0]:
            return PurgeResult(
                events=0,
                from_seq=start[0] + 1,
                through_seq=start[0],
                anchor_chain_mac=start[1],
                event_id=None,
            )
        anchor = await session.scalar(
            select(AuditChainEntry.chain_mac).where(
                AuditChainEntry.municipality_id == municipality.id, AuditChainEntry.seq == through
            )
        )
        assert anchor is not None  # verified just now, under the lock nobody appends or deletes
        purged = select(AuditChainEntry.event_id).where(
            AuditChainEntry.municipality_id == municipality.id, AuditChainEntry.seq <= through
        )
        oldest, newest = (
            await session.execute(
                select(func.min(AuditEvent.recorded_at), func.max(AuditEvent.recorded_at)).where(
                    AuditEvent.municipality_id == municipality.id, AuditEvent.id.in_(purged)
                )
            )
        ).one()
        async with _purging(session):
            removed = await session.execute(
                delete(AuditEvent)
                .where(AuditEvent.municipality_id == municipality.id, AuditEvent.id.in_(purged))
                .execution_options(synchronize_session=False)
            )
            await session.execute(
                delete(AuditChainEntry)
                .where(AuditChainEntry.municipality_id == municipality.id, AuditChainEntry.seq <= through)
                .execution_options(synchronize_session=False)
            )
        count = removed.rowcount  # type: ignore[attr-defined]
        event_id = record(
            session,
            actor=actor,
            action=PURGE_ACTION,
            target_type=LOG_TARGET,
            target_id=municipality.slug,
            payload={
                "before": timestamp(before),
                "from_seq": start[0] + 1,
                "through_seq": through,
                "anchor_chain_mac": anchor,
                "events": count,
                "oldest": timestamp(oldest) if oldest else None,
                "newest": timestamp(newest) if newest else None,
            },
        )
        await flush_events(session)
        await _seal_all(session, platform, municipality.id, (through, anchor))
    return PurgeResult(
        events=count,
        from_seq=start[0] + 1,
        through_seq=through,
        anchor_chain_mac=anchor,
        event_id=str(event_id),
    )


async def _last_before(session: AsyncSession, municipality_id: int, before: datetime) -> int:
    """The seq just before the first entry whose event was recorded at or after ``before`` (or the head)."""
    first_kept = await session.scalar(
        select(func.min(AuditChainEntry.seq))
        .join(
            AuditEvent,
            and_(
                AuditEvent.municipality_id == AuditChainEntry.municipality_id,
                AuditEvent.id == AuditChainEntry.event_id,
            ),
        )
        .where(AuditChainEntry.municipality_id == municipality_id, AuditEvent.recorded_at >= before)
    )
    if first_kept is not None:
        return first_kept - 1
    return (await head(session, municipality_id))[0]


async def _seal_all(
    session: AsyncSession, platform: Platform, municipality_id: int, start: tuple[int, str]
) -> None:
    after = None
    while True:
        _, after = await seal_batch(session, platform.audit_keys, [municipality_id], after=after, start=start)
        if after is None:
            return


class _purging:  # noqa: N801 - reads as ``async with _purging(session):``
    """Lift the append-only guard against DELETE for the statements inside, in this transaction only."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.postgres = session.bind.dialect.name == "postgresql"

    async def _set(self, on: bool) -> None:
        if self.postgres:
            await self.session.execute(
                text("SELECT set_config(:name, :value, true)"),
                {"name": PURGE_SETTING, "value": "on" if on else "off"},
            )
            return
        for table in APPEND_ONLY_TABLES:
            if on:
                await self.session.execute(text(f"DROP TRIGGER {sqlite_trigger_name(table, 'DELETE')}"))
            else:
                await self.session.execute(text(sqlite_trigger_sql(table, "DELETE")))

    async def __aenter__(self) -> None:
        await self._set(True)

    async def __aexit__(self, exc_type: object, *_: object) -> None:
        if exc_type is None:  # on error the rollback restores the guard
            await self._set(False)
