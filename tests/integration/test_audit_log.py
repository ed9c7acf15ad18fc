"""The audit log on SQLite and PostgreSQL: recorded in the caller's transaction, append-only in the database,
sealed into a chain that verifies, and written by the core's own changes.

Also the helpers the other ``test_audit_*`` modules share: seeding events and tampering with raw SQL behind the
application's back (triggers disabled, as a table owner could).
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from core.audit import AuditChainEntry, AuditEvent, flush_events, record, seal, verify
from core.audit.macs import mac_of
from core.audit.recording import pending
from core.audit.schema import APPEND_ONLY_TABLES, pg_trigger_name, sqlite_trigger_name, sqlite_trigger_sql
from core.audit.sealing import Sealer
from core.db import UTCDateTime, utcnow
from core.exceptions import InvalidInput
from core.platform import Platform
from core.tenancy import service
from plugins.notices.models import Notice

# --- shared helpers -------------------------------------------------------------------------------------------


async def record_events(
    platform: Platform, slug: str, count: int, *, action: str = "notices.posted"
) -> list[uuid.UUID]:
    """``count`` events, one transaction each (as a plugin would record them)."""
    municipality = platform.municipality(slug)
    ids = []
    for index in range(count):
        async with platform.sessions.tenant(municipality.id) as session:
            ids.append(
                record(
                    session,
                    actor="system",
                    action=action,
                    target_type="notice",
                    target_id=f"n-{index}",
                    payload={"index": index},
                )
            )
    return ids


async def chain(platform: Platform, slug: str) -> list[tuple[int, uuid.UUID]]:
    """``(seq, event_id)`` of every chain entry of a municipality, in order."""
    municipality = platform.municipality(slug)
    async with platform.sessions.tenant(municipality.id) as session:
        rows = await session.execute(
            select(AuditChainEntry.seq, AuditChainEntry.event_id).order_by(AuditChainEntry.seq)
        )
        return [(r.seq, r.event_id) for r in rows]


async def sealed_log(platform: Platform, slug: str, extra: int = 5) -> list[tuple[int, uuid.UUID]]:
    """A municipality's log with ``extra`` more events, all sealed; its chain."""
    await record_events(platform, slug, extra)
    await seal(platform, platform.municipality(slug).id)
    return await chain(platform, slug)


def sql(statement: str, **params: Any) -> tuple[Any, dict[str, Any]]:
    """A raw SQL statement; UUID, time and JSON parameters are bound as the backend stores them."""
    types = {uuid.UUID: sa.Uuid(), datetime: UTCDateTime(), dict: sa.JSON()}
    clause = text(statement).bindparams(
        *[
            sa.bindparam(name, type_=types[type(value)])
            for name, value in params.items()
            if type(value) in types
        ]
    )
    return clause, params


async def tamper(platform: Platform, *statements: tuple[Any, dict[str, Any]]) -> None:
    """Run raw SQL on the audit tables as their owner, with the append-only triggers out of the way."""
    postgres = platform.engine.dialect.name == "postgresql"
    async with platform.engine.begin() as conn:
        if postgres:
            await conn.execute(text("SELECT set_config('tsunagu.platform', 'on', true)"))
        for table in APPEND_ONLY_TABLES:
            if postgres:
                await conn.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER {pg_trigger_name(table)}"))
            else:
                for operation in ("UPDATE", "DELETE"):
                    await conn.execute(text(f"DROP TRIGGER {sqlite_trigger_name(table, operation)}"))
        for statement, params in statements:
            await conn.execute(statement, params)
        for table in APPEND_ONLY_TABLES:
            if postgres:
                await conn.execute(text(f"ALTER TABLE {table} ENABLE TRIGGER {pg_trigger_name(table)}"))
            else:
                for operation in ("UPDATE", "DELETE"):
                    await conn.execute(text(sqlite_trigger_sql(table, operation)))


async def count(platform: Platform, model: Any, slug: str) -> int:
    async with platform.sessions.tenant(platform.municipality(slug).id) as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


# --- recording in the caller's transaction ----------------------------------------------------------------------


def new_notice(title: str) -> Notice:
    return Notice(id=uuid.uuid4(), category="general", title=title, body="b", published_at=utcnow())


async def test_an_event_commits_with_the_change_and_rolls_back_with_it(platform: Platform) -> None:
    miki = platform.municipality("miki")
    before = await count(platform, AuditEvent, "miki")
    async with platform.sessions.tenant(miki.id) as session:
        notice = new_notice("kept")
        session.add(notice)
        kept = record(
            session, actor="system", action="notices.posted", target_type="notice", target_id=notice.id
        )

    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        async with platform.sessions.tenant(miki.id) as session:
            notice = new_notice("lost")
            session.add(notice)
            lost = record(
                session, actor="system", action="notices.posted", target_type="notice", target_id=notice.id
            )
            await session.flush()  # written, then rolled back
            raise Boom

    async with platform.sessions.tenant(miki.id) as session:
        ids = set(await session.scalars(select(AuditEvent.id)))
        titles = set(await session.scalars(select(Notice.title)))
    assert kept in ids and lost not in ids
    assert titles == {"kept"}
    assert len(ids) == before + 1
    report = await verify(platform, miki.id)
    assert report.ok, report.problems
    assert report.entries == before + 1


async def test_an_event_recorded_in_a_savepoint_goes_with_it(platform: Platform) -> None:
    miki = platform.municipality("miki")
    before = await count(platform, AuditEvent, "miki")
    async with platform.sessions.tenant(miki.id) as session:
        kept = record(
            session, actor="system", action="notices.posted", target_type="notice", target_id="outer"
        )
        savepoint = await session.begin_nested()
        lost = record(
            session, actor="system", action="notices.posted", target_type="notice", target_id="inner"
        )
        await savepoint.rollback()
        async with session.begin_nested():
            released = record(
                session, actor="system", action="notices.posted", target_type="notice", target_id="ok"
            )
        flushed = record(
            session, actor="system", action="notices.posted", target_type="notice", target_id="read"
        )
        await flush_events(session)  # readable in the same transaction, before the commit
        seen = set(await session.scalars(select(AuditEvent.id)))
        assert {kept, released, flushed} <= seen and lost not in seen
    async with platform.sessions.tenant(miki.id) as session:
        ids = set(await session.scalars(select(AuditEvent.id)))
    assert {kept, released, flushed} <= ids and lost not in ids
    assert len(ids) == before + 3


@pytest.mark.parametrize(
    "moment", [None, datetime(2026, 4, 1, 9, 0, 0, tzinfo=UTC), datetime(2026, 4, 1, 9, 0, 0, 7, tzinfo=UTC)]
)
async def test_an_event_reads_back_exactly_as_recorded(
    platform: Platform, monkeypatch: pytest.MonkeyPatch, moment: datetime | None
) -> None:
    """Events are written through the driver, not the ORM: what SQLAlchemy reads back must be what was MACed."""
    if moment is not None:
        monkeypatch.setattr("core.audit.recording.utcnow", lambda: moment)
    miki = platform.municipality("miki")
    async with platform.sessions.tenant(miki.id) as session:
        record(
            session,
            actor="account:0b9c6a43-6f1e-4a55-9d7e-2f5c1c3e8a10",
            action="notices.posted",
            target_type="notice",
            target_id="お知らせ-1",
            payload={
                "title_len": 12,
                "tags": ["防災", None, True, 1.5],
                "nested": {"b": 2, "a": [1, {"x": "y"}]},
            },
        )
        (written,) = pending(session)
    async with platform.sessions.tenant(miki.id) as session:
        stored = await session.get(AuditEvent, (miki.id, written["id"]))
        assert stored is not None
        assert {c: getattr(stored, c) for c in written} == written
        assert mac_of(platform.audit_keys.mac_key, stored) == stored.mac
        if moment is not None:
            assert (
                await session.scalar(
                    select(func.count()).select_from(AuditEvent).where(AuditEvent.recorded_at >= moment)
                )
                >= 1
            )
            assert (
                await session.scalar(
                    select(func.count()).select_from(AuditEvent).where(AuditEvent.recorded_at == moment)
                )
                == 1
            )


async def test_a_refused_record_call_leaves_the_callers_transaction_usable(platform: Platform) -> None:
    miki = platform.municipality("miki")
    async with platform.sessions.tenant(miki.id) as session:
        with pytest.raises(InvalidInput):
            record(session, actor="Taro Yamada", action="notices.posted", target_type="notice", target_id="1")
        session.add(new_notice("still saved"))
    async with platform.sessions.tenant(miki.id) as session:
        assert await session.scalar(select(func.count()).select_from(Notice)) == 1


# --- append-only in the database ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_events SET actor = 'system'",
        "UPDATE audit_events SET payload = '{}'",
        "DELETE FROM audit_events",
        "UPDATE audit_chain SET seq = seq + 1000",
        "DELETE FROM audit_chain",
    ],
)
async def test_the_database_refuses_updates_and_deletes(platform: Platform, statement: str) -> None:
    await sealed_log(platform, "miki", extra=1)
    miki = platform.municipality("miki")
    with pytest.raises(DBAPIError, match="append-only"):
        async with platform.sessions.tenant(miki.id) as session:
            await session.execute(text(statement))
    with pytest.raises(DBAPIError, match="append-only"):  # a platform-wide session is held the same way
        async with platform.sessions.platform() as session:
            await session.execute(text(statement))
    assert (await verify(platform, miki.id)).ok


async def test_the_orm_cannot_edit_or_delete_an_event_either(platform: Platform) -> None:
    await sealed_log(platform, "miki", extra=1)
    miki = platform.municipality("miki")
    with pytest.raises(DBAPIError, match="append-only"):
        async with platform.sessions.tenant(miki.id) as session:
            event = await session.scalar(select(AuditEvent).limit(1))
            assert event is not None
            event.target_id = "something else"
    with pytest.raises(DBAPIError, match="append-only"):
        async with platform.sessions.tenant(miki.id) as session:
            event = await session.scalar(select(AuditEvent).limit(1))
            await session.delete(event)


# --- sealing and verifying --------------------------------------------------------------------------------------


async def test_a_clean_log_verifies_and_is_sealed_in_order(platform: Platform) -> None:
    entries = await sealed_log(platform, "miki", extra=5)
    assert [seq for seq, _ in entries] == list(range(1, len(entries) + 1))
    report = await verify(platform, platform.municipality("miki").id)
    assert report.ok and report.problems == []
    assert (report.entries, report.first_seq, report.head_seq) == (len(entries), 1, len(entries))
    assert report.head_mac is not None and len(report.head_mac) == 64
    # every municipality has its own chain, starting at 1
    assert [seq for seq, _ in await sealed_log(platform, "takamatsu", extra=1)][0] == 1
    assert (await verify(platform, platform.municipality("takamatsu").id)).ok


async def test_the_core_records_its_own_changes(platform: Platform) -> None:
    miki = platform.municipality("miki")
    async with platform.sessions.tenant(miki.id) as session:
        actions = {(e.action, e.target_id) for e in await session.scalars(select(AuditEvent))}
    assert ("core.municipality_created", "miki") in actions  # by the fixture's manifest apply
    assert ("core.plugin_enabled", "notices") in actions

    await service.set_plugin_enabled(platform, "miki", "opinion_box", True)
    await service.configure_plugin(platform, "miki", "notices", {"page_size": 33})
    await service.set_plugin_enabled(platform, "miki", "opinion_box", False)
    await service.set_plugin_enabled(platform, "miki", "opinion_box", False)  # no change, no event

    async with platform.sessions.tenant(miki.id) as session:
        recent = (
            await session.scalars(
                select(AuditEvent).where(AuditEvent.target_type == "plugin").order_by(AuditEvent.recorded_at)
            )
        ).all()
    tail = [(e.actor, e.action, e.target_id, e.payload) for e in recent[-3:]]
    assert tail == [
        ("cli", "core.plugin_enabled", "opinion_box", {}),
        ("cli", "core.plugin_configured", "notices", {"keys": ["page_size"]}),
        ("cli", "core.plugin_disabled", "opinion_box", {}),
    ]
    assert 33 not in [v for e in recent for v in e.payload.values()]  # setting values are not copied
    other = platform.municipality("takamatsu")
    async with platform.sessions.tenant(other.id) as session:
        assert not (
            await session.scalars(select(AuditEvent).where(AuditEvent.target_id == "opinion_box"))
        ).all()
    assert (await verify(platform, miki.id)).ok


async def test_a_failed_change_records_nothing(platform: Platform) -> None:
    before = await count(platform, AuditEvent, "miki")
    with pytest.raises(Exception, match="page_size"):
        await service.configure_plugin(platform, "miki", "notices", {"page_size": -5})
    assert await count(platform, AuditEvent, "miki") == before


async def test_concurrent_sealers_never_fork_the_chain(platform: Platform) -> None:
    miki = platform.municipality("miki")
    await record_events(platform, "miki", 30)
    sealed = await asyncio.gather(*[seal(platform, miki.id) for _ in range(4)])
    entries = await chain(platform, "miki")
    assert sum(sealed) <= len(entries)
    assert [seq for seq, _ in entries] == list(range(1, len(entries) + 1))
    assert len({event for _, event in entries}) == len(entries)
    assert (await verify(platform, miki.id)).ok


async def test_the_background_sealer_seals_recent_events(platform: Platform) -> None:
    await record_events(platform, "naoshima", 3)
    sealer = Sealer(platform, interval=0.05)
    sealer.start()
    try:
        for _ in range(100):
            if await count(platform, AuditChainEntry, "naoshima") == await count(
                platform, AuditEvent, "naoshima"
            ):
                break
            await asyncio.sleep(0.05)
    finally:
        await sealer.stop()
    assert await count(platform, AuditChainEntry, "naoshima") == await count(platform, AuditEvent, "naoshima")


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgres"], indirect=False)
async def test_recording_waits_for_no_other_writer_and_a_late_commit_is_sealed_after(
    platform: Platform,
) -> None:
    """An open transaction that recorded an event does not hold up another writer, nor the sealer; when it
    commits, its event (recorded earlier) is sealed after the ones committed meanwhile, and the log verifies."""
    miki = platform.municipality("miki")
    async with platform.sessions.tenant(miki.id) as slow:
        late = record(slow, actor="system", action="notices.posted", target_type="notice", target_id="slow")
        await slow.flush()  # the row exists, uncommitted, with the earliest recorded_at
        quick = await asyncio.wait_for(record_events(platform, "miki", 2), timeout=5)
        await asyncio.wait_for(seal(platform, miki.id), timeout=5)
        assert late not in {event for _, event in await chain(platform, "miki")}
    await seal(platform, miki.id)
    events = [event for _, event in await chain(platform, "miki")]
    assert events.index(late) > max(events.index(e) for e in quick)
    report = await verify(platform, miki.id)
    assert report.ok, report.problems
