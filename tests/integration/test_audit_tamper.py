"""Tampering with the audit log behind the application's back, on SQLite and PostgreSQL.

Each test changes the log with raw SQL as the tables' owner, the append-only triggers disabled (what someone
with database access but without ``TSUNAGU_SECRET_KEY`` can do), then checks that verification fails and that
the first problem it reports is the entry that was tampered with: an edited, deleted, reordered or inserted
entry, in each of its forms.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select

from core.audit import AuditEvent, verify
from core.audit.macs import chain_mac, event_mac
from core.db import utcnow
from core.platform import Platform
from tests.integration.test_audit_log import chain, sealed_log, sql, tamper

WRONG_KEY = hashlib.sha256(b"an attacker's best guess").digest()


async def first_problem(platform: Platform, slug: str = "miki") -> tuple[str, int | None, uuid.UUID | None]:
    report = await verify(platform, platform.municipality(slug).id)
    assert not report.ok
    first = report.problems[0]
    return first.kind, first.seq, first.event_id


async def event_row(platform: Platform, event_id: uuid.UUID) -> AuditEvent:
    async with platform.sessions.tenant(platform.municipality("miki").id) as session:
        event = await session.scalar(select(AuditEvent).where(AuditEvent.id == event_id))
        assert event is not None
        session.expunge(event)
        return event


def forged_event(municipality_id: int, **overrides: object) -> dict[str, object]:
    """An event as the application would write it, with a MAC made with a guessed key."""
    fields: dict[str, object] = {
        "municipality_id": municipality_id,
        "id": uuid.uuid4(),
        "recorded_at": utcnow() - timedelta(hours=1),
        "actor": "cli",
        "action": "core.plugin_enabled",
        "target_type": "plugin",
        "target_id": "notices",
        "payload": {},
        **overrides,
    }
    fields["mac"] = event_mac(WRONG_KEY, **fields)  # type: ignore[arg-type]
    return fields


INSERT_EVENT = (
    "INSERT INTO audit_events (municipality_id, id, recorded_at, actor, action, target_type, target_id, payload, mac) "
    "VALUES (:municipality_id, :id, :recorded_at, :actor, :action, :target_type, :target_id, :payload, :mac)"
)
INSERT_ENTRY = "INSERT INTO audit_chain (municipality_id, seq, event_id, chain_mac) VALUES (:m, :seq, :e, :c)"


# --- edited --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "assignment",
    [
        "actor = 'account:00000000-0000-4000-8000-000000000000'",
        "action = 'notices.withdrawn'",
        "target_id = 'n-999'",
        "payload = '{\"index\": 999}'",
        "mac = '" + "0" * 64 + "'",
    ],
)
async def test_an_edited_event_is_named(platform: Platform, assignment: str) -> None:
    entries = await sealed_log(platform, "miki")
    seq, event_id = entries[-3]
    await tamper(platform, sql(f"UPDATE audit_events SET {assignment} WHERE id = :e", e=event_id))
    assert await first_problem(platform) == ("event_edited", seq, event_id)


async def test_an_event_edited_with_a_recomputed_mac_is_named(platform: Platform) -> None:
    """Knowing the format is not enough: a MAC recomputed without the key does not match."""
    entries = await sealed_log(platform, "miki")
    seq, event_id = entries[-2]
    event = await event_row(platform, event_id)
    event.target_id = "someone-else"
    forged = event_mac(
        WRONG_KEY,
        municipality_id=event.municipality_id,
        id=event.id,
        recorded_at=event.recorded_at,
        actor=event.actor,
        action=event.action,
        target_type=event.target_type,
        target_id=event.target_id,
        payload=event.payload,
    )
    await tamper(
        platform,
        sql(
            "UPDATE audit_events SET target_id = :t, mac = :m WHERE id = :e",
            t="someone-else",
            m=forged,
            e=event_id,
        ),
    )
    assert await first_problem(platform) == ("event_edited", seq, event_id)


async def test_an_edited_chain_entry_is_named(platform: Platform) -> None:
    entries = await sealed_log(platform, "miki")
    seq, event_id = entries[2]
    await tamper(platform, sql("UPDATE audit_chain SET chain_mac = :c WHERE seq = :s", c="ab" * 32, s=seq))
    assert await first_problem(platform) == ("chain_broken", seq, event_id)


# --- deleted -------------------------------------------------------------------------------------------------


async def test_a_deleted_event_is_named(platform: Platform) -> None:
    entries = await sealed_log(platform, "miki")
    seq, event_id = entries[len(entries) // 2]
    await tamper(platform, sql("DELETE FROM audit_events WHERE id = :e", e=event_id))
    assert await first_problem(platform) == ("event_missing", seq, event_id)


async def test_an_event_deleted_with_its_entry_in_the_middle_is_named(platform: Platform) -> None:
    entries = await sealed_log(platform, "miki")
    seq, event_id = entries[len(entries) // 2]
    await tamper(
        platform,
        sql("DELETE FROM audit_events WHERE id = :e", e=event_id),
        sql("DELETE FROM audit_chain WHERE event_id = :e", e=event_id),
    )
    assert await first_problem(platform) == ("entries_missing", seq, None)


async def test_the_first_entries_deleted_without_a_purge_are_named(platform: Platform) -> None:
    entries = await sealed_log(platform, "miki")
    doomed = [event_id for _, event_id in entries[:3]]
    await tamper(
        platform,
        *[sql("DELETE FROM audit_events WHERE id = :e", e=e) for e in doomed],
        *[sql("DELETE FROM audit_chain WHERE event_id = :e", e=e) for e in doomed],
    )
    kind, seq, _ = await first_problem(platform)
    assert (kind, seq) == ("entries_missing", 1)


async def test_entries_deleted_from_the_end_are_named_against_a_kept_head(platform: Platform) -> None:
    entries = await sealed_log(platform, "miki")
    miki = platform.municipality("miki").id
    before = await verify(platform, miki)
    kept = (before.head_seq, (before.head_mac or "")[:16])
    seq, event_id = entries[-1]
    await tamper(
        platform,
        sql("DELETE FROM audit_events WHERE id = :e", e=event_id),
        sql("DELETE FROM audit_chain WHERE event_id = :e", e=event_id),
    )
    assert (await verify(platform, miki)).ok  # alone, a shorter log looks whole: keep the head elsewhere
    report = await verify(platform, miki, expect=kept)  # type: ignore[arg-type]
    assert (report.problems[0].kind, report.problems[0].seq) == ("truncated", seq)


# --- reordered -----------------------------------------------------------------------------------------------


async def test_two_entries_swapped_in_the_chain_are_named(platform: Platform) -> None:
    entries = await sealed_log(platform, "miki")
    (a, event_a), (b, event_b) = entries[2], entries[5]
    await tamper(
        platform,
        sql("UPDATE audit_chain SET seq = -seq WHERE seq IN (:a, :b)", a=a, b=b),
        sql("UPDATE audit_chain SET seq = :b WHERE seq = :na", b=b, na=-a),
        sql("UPDATE audit_chain SET seq = :a WHERE seq = :nb", a=a, nb=-b),
    )
    assert await first_problem(platform) == ("chain_broken", a, event_b)
    report = await verify(platform, platform.municipality("miki").id)
    assert ("chain_broken", b, event_a) in [(p.kind, p.seq, p.event_id) for p in report.problems]


async def test_two_events_with_their_contents_swapped_are_named(platform: Platform) -> None:
    entries = await sealed_log(platform, "miki")
    (a, id_a), (b, id_b) = entries[-4], entries[-2]
    first, second = await event_row(platform, id_a), await event_row(platform, id_b)
    columns = ("recorded_at", "actor", "action", "target_type", "target_id", "payload", "mac")
    assignments = ", ".join(f"{c} = :{c}" for c in columns)
    await tamper(
        platform,
        sql(
            f"UPDATE audit_events SET {assignments} WHERE id = :e",
            e=id_a,
            **{c: getattr(second, c) for c in columns},
        ),
        sql(
            f"UPDATE audit_events SET {assignments} WHERE id = :e",
            e=id_b,
            **{c: getattr(first, c) for c in columns},
        ),
    )
    report = await verify(platform, platform.municipality("miki").id)
    assert [(p.kind, p.seq, p.event_id) for p in report.problems] == [
        ("event_edited", a, id_a),
        ("event_edited", b, id_b),
    ]


# --- inserted ------------------------------------------------------------------------------------------------


async def test_a_forged_event_without_an_entry_is_never_sealed_and_is_named(platform: Platform) -> None:
    await sealed_log(platform, "miki")
    fields = forged_event(platform.municipality("miki").id)
    await tamper(platform, sql(INSERT_EVENT, **fields))
    assert await first_problem(platform) == ("not_sealed", None, fields["id"])
    assert fields["id"] not in {
        e for _, e in await chain(platform, "miki")
    }  # verify's own sealing refused it


async def test_a_forged_event_dated_in_the_future_is_named_too(platform: Platform) -> None:
    await sealed_log(platform, "miki")
    fields = forged_event(platform.municipality("miki").id, recorded_at=utcnow() + timedelta(days=3650))
    await tamper(platform, sql(INSERT_EVENT, **fields))
    assert await first_problem(platform) == ("not_sealed", None, fields["id"])


async def test_a_forged_event_with_a_forged_entry_at_the_end_is_named(platform: Platform) -> None:
    entries = await sealed_log(platform, "miki")
    miki = platform.municipality("miki").id
    fields = forged_event(miki)
    seq = entries[-1][0] + 1
    forged_chain = chain_mac(
        WRONG_KEY,
        municipality_id=miki,
        seq=seq,
        previous="00" * 32,
        event_id=fields["id"],
        event_mac=fields["mac"],
    )  # type: ignore[arg-type]
    await tamper(
        platform,
        sql(INSERT_EVENT, **fields),
        sql(INSERT_ENTRY, m=miki, seq=seq, e=fields["id"], c=forged_chain),
    )
    assert await first_problem(platform) == ("event_edited", seq, fields["id"])


async def test_a_copy_of_a_genuine_event_inserted_in_the_middle_is_named(platform: Platform) -> None:
    """The strongest insertion without the key: a byte-for-byte copy of a genuine event under a new id, given
    a chain entry in the middle (later entries renumbered) whose MAC is copied from its neighbour."""
    entries = await sealed_log(platform, "miki")
    miki = platform.municipality("miki").id
    seq, original = entries[3]
    copy = await event_row(platform, original)
    fields = {
        c: getattr(copy, c)
        for c in (
            "municipality_id",
            "recorded_at",
            "actor",
            "action",
            "target_type",
            "target_id",
            "payload",
            "mac",
        )
    }
    fields["id"] = uuid.uuid4()
    stolen_mac = hmac.new(b"x", b"y", hashlib.sha256).hexdigest()
    await tamper(
        platform,
        sql(INSERT_EVENT, **fields),
        sql("UPDATE audit_chain SET seq = -seq WHERE seq >= :s", s=seq),
        sql("UPDATE audit_chain SET seq = 1 - seq WHERE seq < 0"),
        sql(INSERT_ENTRY, m=miki, seq=seq, e=fields["id"], c=stolen_mac),
    )
    assert await first_problem(platform) == ("event_edited", seq, fields["id"])


async def test_a_clean_log_with_many_entries_verifies(platform: Platform) -> None:
    """The control for every test above: the same log, untouched, verifies."""
    entries = await sealed_log(platform, "miki", extra=12)
    report = await verify(platform, platform.municipality("miki").id)
    assert report.ok and report.entries == len(entries)
