"""Verification: does a municipality's audit log still hold exactly what was recorded, in the order sealed?

After sealing everything committed, walk the chain by ``seq`` from its start (1, or the entry after the last
retention purge's anchor) and check, entry by entry:

- ``seq`` has no gaps (an entry and its event deleted);
- the entry's event exists (an event deleted);
- the event's MAC recomputes from its content (an event edited, or two events' contents swapped);
- the entry's chain MAC recomputes from the previous one (entries reordered, inserted, or the chain edited);

then that every event is in the chain: one that is not, unless recorded in the last few seconds with a good MAC
(still being committed), was inserted behind the application's back or edited before it was sealed.

Every problem is reported with its ``seq`` and event id; the first is the one to look at. Tampering at the very
end of the log (its last entries deleted) shows only against a head kept elsewhere: pass it as ``expect``.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

import msgspec
from sqlalchemy import select

from core.audit.macs import GENESIS, chain_mac, mac_of, same
from core.audit.models import AuditChainEntry, AuditEvent
from core.audit.sealing import EVENT_COLUMNS, seal, unsealed
from core.db.base import utcnow
from core.exceptions import PlatformError

if TYPE_CHECKING:
    from core.audit.keys import AuditKeys
    from core.platform import Platform

PURGE_ACTION = "core.audit_purged"
LOG_TARGET = "audit_log"
WALK_BATCH = 1000
MAX_PROBLEMS = 100
GRACE = timedelta(seconds=5)

ProblemKind = Literal[
    "entries_missing",
    "event_missing",
    "event_edited",
    "chain_broken",
    "not_sealed",
    "head_mismatch",
    "truncated",
]


class AuditLogTampered(PlatformError):
    """The audit log does not verify."""

    status_code = 409
    title = "Audit log does not verify"
    exit_code = 1


class Problem(msgspec.Struct, kw_only=True, frozen=True):
    kind: ProblemKind
    seq: int | None
    """The chain position, or ``None`` for an event that is in no entry."""
    event_id: uuid.UUID | None
    detail: str

    def describe(self) -> str:
        where = [f"seq {self.seq}" if self.seq is not None else "not in the chain"]
        if self.event_id is not None:
            where.append(f"event {self.event_id}")
        return f"{', '.join(where)}: {self.detail}"


class Report(msgspec.Struct, kw_only=True, frozen=True):
    municipality_id: int
    ok: bool
    entries: int
    """Chain entries walked."""
    first_seq: int | None
    head_seq: int | None
    head_mac: str | None
    """Keep ``head_seq:head_mac`` somewhere else to detect, later, entries deleted from the end."""
    purged_through: int
    """The last seq removed by a retention purge (0: never purged)."""
    pending: int
    """Events recorded in the last few seconds, not sealed yet: not a problem."""
    problems: list[Problem]
    """At most 100, in chain order, then the events in no entry."""

    @property
    def first(self) -> Problem | None:
        return self.problems[0] if self.problems else None


async def purge_anchor(session: Any, keys: AuditKeys, municipality_id: int) -> tuple[int, str]:
    """``(through_seq, chain_mac)`` of the latest retention purge whose event is genuine, else ``(0, GENESIS)``."""
    events = await session.scalars(
        select(AuditEvent).where(
            AuditEvent.municipality_id == municipality_id,
            AuditEvent.target_type == LOG_TARGET,
            AuditEvent.action == PURGE_ACTION,
        )
    )
    best = (0, GENESIS)
    for event in events:
        through, anchor = event.payload.get("through_seq"), event.payload.get("anchor_chain_mac")
        if (
            not same(mac_of(keys.mac_key, event), event.mac)
            or not isinstance(through, int)
            or not isinstance(anchor, str)
        ):
            continue  # a forged purge event anchors nothing (and the walk reports it)
        if through > best[0]:
            best = (through, anchor)
    return best


def _expected_chain(
    keys: AuditKeys, municipality_id: int, seq: int, previous: str, event_id: uuid.UUID, mac: str
) -> str:
    try:
        return chain_mac(
            keys.mac_key,
            municipality_id=municipality_id,
            seq=seq,
            previous=previous,
            event_id=event_id,
            event_mac=mac,
        )
    except ValueError:  # a previous chain MAC that is not even hex
        return ""


class _Walk:
    def __init__(
        self, keys: AuditKeys, municipality_id: int, start: tuple[int, str], expect: tuple[int, str] | None
    ):
        self.keys, self.municipality_id, self.expect = keys, municipality_id, expect
        self.expected, self.previous = start[0] + 1, start[1]
        self.entries = 0
        self.first_seq: int | None = None
        self.head: tuple[int, str] | None = None
        self.problems: list[Problem] = []

    def problem(self, kind: ProblemKind, seq: int | None, event_id: uuid.UUID | None, detail: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(Problem(kind=kind, seq=seq, event_id=event_id, detail=detail))

    def step(self, entry: Any, event: Any) -> None:
        seq, event_id, stored = entry.seq, entry.event_id, entry.chain_mac
        self.entries += 1
        self.first_seq = seq if self.first_seq is None else self.first_seq
        linked = seq == self.expected  # else the previous MAC is unknown: report the gap, then resynchronise
        if seq > self.expected:
            missing = (
                f"entry {self.expected} is"
                if seq == self.expected + 1
                else f"entries {self.expected} to {seq - 1} are"
            )
            self.problem("entries_missing", self.expected, None, f"{missing} missing (deleted)")
        elif seq < self.expected:
            self.problem(
                "chain_broken",
                seq,
                event_id,
                f"an entry at or before the purge anchor (seq {self.expected - 1})",
            )
        if event is None:
            self.problem("event_missing", seq, event_id, "the event is missing (deleted)")
        else:
            mac = mac_of(self.keys.mac_key, event)
            if not same(mac, event.mac):
                self.problem(
                    "event_edited", seq, event_id, "the event does not match its MAC (edited or forged)"
                )
            elif linked and not same(
                _expected_chain(self.keys, self.municipality_id, seq, self.previous, event_id, mac), stored
            ):
                self.problem(
                    "chain_broken",
                    seq,
                    event_id,
                    "the chain MAC does not match (entries reordered, inserted or edited)",
                )
        if (
            self.expect is not None
            and seq == self.expect[0]
            and not same(stored[: len(self.expect[1])], self.expect[1])
        ):
            self.problem(
                "head_mismatch", seq, event_id, f"the chain MAC differs from the expected {self.expect[1]}"
            )
        self.previous, self.expected, self.head = stored, seq + 1, (seq, stored)


async def _entries_with_events(
    platform: Platform, municipality_id: int, *, after: int
) -> list[tuple[Any, Any]]:
    """The next :data:`WALK_BATCH` chain entries after seq ``after``, each with its event row (or ``None``).

    Two plain reads (a range of the chain's key, then the events by key) rather than one join, so the plan
    cannot turn quadratic when the planner's statistics lag behind a freshly filled table."""
    async with platform.sessions.tenant(municipality_id) as session:
        entries = (
            await session.execute(
                select(AuditChainEntry.seq, AuditChainEntry.event_id, AuditChainEntry.chain_mac)
                .where(AuditChainEntry.municipality_id == municipality_id, AuditChainEntry.seq > after)
                .order_by(AuditChainEntry.seq)
                .limit(WALK_BATCH)
            )
        ).all()
        if not entries:
            return []
        events = await session.execute(
            select(*EVENT_COLUMNS).where(
                AuditEvent.municipality_id == municipality_id,
                AuditEvent.id.in_([e.event_id for e in entries]),
            )
        )
        by_id = {event.id: event for event in events}
    return [(entry, by_id.get(entry.event_id)) for entry in entries]


async def verify(
    platform: Platform,
    municipality_id: int,
    *,
    expect: tuple[int, str] | None = None,
    now: datetime | None = None,
) -> Report:
    """Seal, then check one municipality's whole audit log (see the module docstring).

    :param expect: a head kept from an earlier verification, ``(seq, chain MAC or a prefix of it)``: that entry
        must still be there, unchanged (unless a retention purge removed it since).
    """
    started = now or utcnow()
    keys = platform.audit_keys
    await seal(platform, municipality_id)
    async with platform.sessions.tenant(municipality_id) as session:
        start = await purge_anchor(session, keys, municipality_id)
    walk = _Walk(keys, municipality_id, start, expect)
    last = 0
    while True:
        batch = await _entries_with_events(platform, municipality_id, after=last)
        for entry, event in batch:
            walk.step(entry, event)
        if len(batch) < WALK_BATCH:
            break
        last = batch[-1][0].seq
    if expect is not None and expect[0] > start[0] and (walk.head is None or walk.head[0] < expect[0]):
        end = walk.head[0] if walk.head else start[0]
        walk.problem(
            "truncated",
            expect[0],
            None,
            f"the log ends at seq {end}, before the expected head: entries removed from the end",
        )
    pending = 0
    async with platform.sessions.tenant(municipality_id) as session:
        query = select(*EVENT_COLUMNS).where(unsealed(municipality_id))
        query = query.order_by(AuditEvent.recorded_at, AuditEvent.id).limit(MAX_PROBLEMS + 1000)
        for event in (await session.execute(query)).all():
            genuine = same(mac_of(keys.mac_key, event), event.mac)
            if genuine and event.recorded_at >= started - GRACE:
                pending += 1
            elif genuine:
                walk.problem(
                    "not_sealed",
                    None,
                    event.id,
                    "the event is in no chain entry (inserted, or its entry deleted)",
                )
            else:
                walk.problem(
                    "not_sealed",
                    None,
                    event.id,
                    "the event is in no chain entry and does not match its MAC (inserted)",
                )
    return Report(
        municipality_id=municipality_id,
        ok=not walk.problems,
        entries=walk.entries,
        first_seq=walk.first_seq,
        head_seq=walk.head[0] if walk.head else None,
        head_mac=walk.head[1] if walk.head else None,
        purged_through=start[0],
        pending=pending,
        problems=walk.problems,
    )
