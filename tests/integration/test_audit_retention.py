"""Retention and purge: no deletion unless a municipality set a retention, only of entries older than it, only
of a log that verifies; and the log still verifies afterwards, from the purge's anchor."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from core.audit import AuditEvent, AuditLogTampered, purge, seal, set_retention, verify
from core.audit.retention import get_retention
from core.db import utcnow
from core.exceptions import InvalidInput
from core.platform import Platform
from tests.integration.test_audit_log import chain, count, record_events, sql, tamper

DAY = timedelta(days=1)


async def history(platform: Platform, monkeypatch: pytest.MonkeyPatch, start: datetime) -> None:
    """miki's log: the fixture's events and 3 more now (``start``), then 2 recorded 500 days later."""
    await record_events(platform, "miki", 3)
    await seal(platform, platform.municipality("miki").id)
    monkeypatch.setattr("core.audit.recording.utcnow", lambda: start + 500 * DAY)
    await record_events(platform, "miki", 2, action="notices.withdrawn")
    await seal(platform, platform.municipality("miki").id)
    monkeypatch.undo()


async def test_nothing_is_purged_without_a_retention(platform: Platform) -> None:
    miki = platform.municipality("miki")
    before = await count(platform, AuditEvent, "miki")
    with pytest.raises(InvalidInput, match="keeps its audit log forever"):
        await purge(platform, miki, utcnow() + DAY, now=utcnow() + 1000 * DAY)
    assert await count(platform, AuditEvent, "miki") == before
    assert await get_retention(platform, miki) is None


async def test_a_purge_removes_the_old_prefix_and_the_log_verifies_from_its_anchor(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    miki = platform.municipality("miki")
    start = utcnow()
    others = await count(platform, AuditEvent, "takamatsu")
    await history(platform, monkeypatch, start)
    assert await set_retention(platform, miki, 365) == (None, 365)
    await seal(platform, miki.id)  # the retention change is sealed after the later events: chain order
    entries = await chain(platform, "miki")
    async with platform.sessions.tenant(miki.id) as session:
        actions = {r.id: r.action for r in await session.execute(select(AuditEvent.id, AuditEvent.action))}
    kept = next(i for i, (_, e) in enumerate(entries) if actions[e] == "notices.withdrawn")
    old = entries[:kept]
    now = start + 600 * DAY

    with pytest.raises(InvalidInput, match="may not be purged yet"):
        await purge(platform, miki, now - 300 * DAY, now=now)
    result = await purge(platform, miki, start + 100 * DAY, now=now)

    assert (result.events, result.from_seq, result.through_seq) == (len(old), 1, old[-1][0])
    remaining = await chain(platform, "miki")
    assert remaining[0][0] == result.through_seq + 1
    async with platform.sessions.tenant(miki.id) as session:
        events = {e.id: e for e in await session.scalars(select(AuditEvent))}
    assert sorted(e.action for e in events.values()) == [
        "core.audit_purged",
        "core.audit_retention_changed",
        "notices.withdrawn",
        "notices.withdrawn",
    ]
    purged = events[remaining[-1][1]]  # sealed in the purge's own transaction, last
    assert purged.action == "core.audit_purged"
    assert purged.payload["through_seq"] == result.through_seq
    assert purged.payload["anchor_chain_mac"] == result.anchor_chain_mac
    report = await verify(platform, miki.id)
    assert report.ok, report.problems
    assert (report.purged_through, report.first_seq) == (result.through_seq, result.through_seq + 1)

    # life goes on: two more events (at the real now, long before the next cutoff), then a second purge,
    # anchored on the first, which removes everything but its own record
    await record_events(platform, "miki", 2)
    second = await purge(platform, miki, start + 550 * DAY, now=start + 1000 * DAY)
    assert (second.from_seq, second.events) == (result.through_seq + 1, 6)
    assert [e for _, e in await chain(platform, "miki")] == [uuid.UUID(second.event_id)]
    report = await verify(platform, miki.id)
    assert report.ok, report.problems
    assert report.purged_through == second.through_seq
    # nothing else was touched
    assert await count(platform, AuditEvent, "takamatsu") == others > 0


async def test_a_purge_with_nothing_old_enough_changes_nothing(platform: Platform) -> None:
    miki = platform.municipality("miki")
    await set_retention(platform, miki, 30)
    before = await count(platform, AuditEvent, "miki")
    result = await purge(platform, miki, utcnow() - 31 * DAY)
    assert result.events == 0 and result.event_id is None
    assert await count(platform, AuditEvent, "miki") == before


async def test_a_log_that_does_not_verify_is_not_purged(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    miki = platform.municipality("miki")
    start = utcnow()
    await history(platform, monkeypatch, start)
    await set_retention(platform, miki, 365)
    entries = await chain(platform, "miki")
    await tamper(platform, sql("UPDATE audit_events SET target_id = 'x' WHERE id = :e", e=entries[1][1]))
    before = await count(platform, AuditEvent, "miki")
    with pytest.raises(AuditLogTampered, match=f"seq {entries[1][0]}"):
        await purge(platform, miki, start + 100 * DAY, now=start + 600 * DAY)
    assert await count(platform, AuditEvent, "miki") == before


async def test_the_guard_is_back_after_a_purge(platform: Platform, monkeypatch: pytest.MonkeyPatch) -> None:
    miki = platform.municipality("miki")
    start = utcnow()
    await history(platform, monkeypatch, start)
    await set_retention(platform, miki, 365)
    await purge(platform, miki, start + 100 * DAY, now=start + 600 * DAY)
    for statement in (
        "DELETE FROM audit_events",
        "DELETE FROM audit_chain",
        "UPDATE audit_events SET actor = 'cli'",
    ):
        with pytest.raises(DBAPIError, match="append-only"):
            async with platform.sessions.tenant(miki.id) as session:
                await session.execute(text(statement))


async def test_removing_the_purge_record_is_detected(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    miki = platform.municipality("miki")
    start = utcnow()
    await history(platform, monkeypatch, start)
    await set_retention(platform, miki, 365)
    result = await purge(platform, miki, start + 100 * DAY, now=start + 600 * DAY)
    assert result.event_id is not None
    async with platform.sessions.tenant(miki.id) as session:
        purge_event = await session.scalar(
            select(AuditEvent.id).where(AuditEvent.action == "core.audit_purged")
        )
    await tamper(
        platform,
        sql("DELETE FROM audit_events WHERE id = :e", e=purge_event),
        sql("DELETE FROM audit_chain WHERE event_id = :e", e=purge_event),
    )
    report = await verify(platform, miki.id)
    assert (report.problems[0].kind, report.problems[0].seq) == ("entries_missing", 1)


@pytest.mark.parametrize("days", [0, -1, 36_501])
async def test_a_retention_out_of_range_is_refused(platform: Platform, days: int) -> None:
    with pytest.raises(InvalidInput, match="between 1 and 36500"):
        await set_retention(platform, platform.municipality("miki"), days)


async def test_retention_changes_are_audited_and_can_be_switched_off(platform: Platform) -> None:
    miki = platform.municipality("miki")
    assert await set_retention(platform, miki, 3650) == (None, 3650)
    assert await set_retention(platform, miki, 3650) == (3650, 3650)
    assert await set_retention(platform, miki, None) == (3650, None)
    async with platform.sessions.tenant(miki.id) as session:
        changes = (
            await session.scalars(
                select(AuditEvent.payload)
                .where(AuditEvent.action == "core.audit_retention_changed")
                .order_by(AuditEvent.recorded_at)
            )
        ).all()
    assert changes == [{"retention_days": 3650, "previous": None}, {"retention_days": None, "previous": 3650}]
    assert await get_retention(platform, platform.municipality("takamatsu")) is None
