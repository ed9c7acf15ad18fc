"""Check-in at the venue: a batch of scans from a staff device, each with the device's nonce.

A device keeps scanning through a network loss and sends its queue when back; a batch sent twice (the answer
was lost) must change nothing the second time. So each scan is stored under its nonce with its outcome, in the
same savepoint as the check-in and the points it caused: a nonce seen before gets the stored answer, and two
racing copies of one nonce leave exactly one row (the primary key), the loser reading the winner's answer.
A person scanned twice under different nonces is ``duplicate``: checked in once, paid once.
"""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from core.audit import record
from core.exceptions import InvalidInput
from plugins.health.models import Event, Person, Registration, Scan
from plugins.health.schemas import Actor, ScanIn, ScanResult
from plugins.health.services._context import HealthContext
from plugins.health.services._events import get_event
from plugins.health.services._points import award_attendance
from plugins.health.services._tokens import normalise_code, read_token

_NONCE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
MAX_BATCH = 500
CHECK_IN_OPENS = timedelta(hours=12)
CHECK_IN_CLOSES = timedelta(hours=24)
"""A device's queue sent up to a day late still counts; a scan for next month's session does not."""


def _validate(scans: list[ScanIn]) -> None:
    if not 1 <= len(scans) <= MAX_BATCH:
        raise InvalidInput(f"scans: send 1 to {MAX_BATCH} scans at a time, got {len(scans)}")
    for i, scan in enumerate(scans):
        if not _NONCE.match(scan.nonce):
            raise InvalidInput(f"scans[{i}].nonce: 8 to 64 letters, digits, '-' or '_'")
        if (scan.token is None) == (scan.code is None):
            raise InvalidInput(f"scans[{i}]: give either token (the QR code) or code (typed), not both")


async def _find(session: AsyncSession, ctx: HealthContext, scan: ScanIn) -> Person | None:
    if scan.token is not None:
        try:
            person_id = read_token(ctx.code_key, ctx.municipality.slug, scan.token)
        except InvalidInput:
            return None
        return await session.scalar(select(Person).where(Person.id == person_id))
    return await session.scalar(select(Person).where(Person.short_code == normalise_code(scan.code or "")))


async def _apply(
    session: AsyncSession, ctx: HealthContext, event: Event, scan: ScanIn
) -> tuple[str, Person | None, int]:
    person = await _find(session, ctx, scan)
    if person is None:
        return "unknown", None, 0
    registration = await session.scalar(
        select(Registration).where(
            Registration.event_id == event.id,
            Registration.person_id == person.id,
            Registration.state == "registered",
        )
    )
    if registration is None:
        return "not_registered", person, 0
    checked = await session.execute(
        update(Registration)
        .where(Registration.id == registration.id, Registration.checked_in_at.is_(None))
        .values(checked_in_at=ctx.current())
        .execution_options(synchronize_session=False)
    )
    if checked.rowcount == 0:  # type: ignore[attr-defined]
        return "duplicate", person, 0
    return "checked_in", person, await award_attendance(session, ctx, person, event)


async def check_in(
    session: AsyncSession, ctx: HealthContext, actor: Actor, event_id: uuid.UUID, scans: list[ScanIn]
) -> list[ScanResult]:
    """Apply a batch of scans in order; one answer per scan. :raises InvalidInput: a malformed batch (nothing
    applied). :raises NotFound: no such session."""
    _validate(scans)
    event = await get_event(session, event_id)
    now = ctx.current()
    if not event.starts_at - CHECK_IN_OPENS <= now <= event.ends_at + CHECK_IN_CLOSES:
        raise InvalidInput(
            "event_id: check-in opens 12 hours before the session starts and closes a day after it ends"
        )
    results = []
    for scan in scans:
        stored = await session.scalar(select(Scan).where(Scan.nonce == scan.nonce))
        if stored is None:
            try:
                async with session.begin_nested():
                    outcome, person, points = await _apply(session, ctx, event, scan)
                    session.add(
                        Scan(
                            nonce=scan.nonce,
                            event_id=event.id,
                            outcome=outcome,
                            person_id=person.id if person else None,
                            points=points,
                            scanned_at=ctx.current(),
                        )
                    )
            except IntegrityError:
                stored = await session.scalar(select(Scan).where(Scan.nonce == scan.nonce))
            else:
                record(
                    session,
                    actor=actor.ref,
                    action="health.scanned",
                    target_type="health_event",
                    target_id=event.id,
                    payload={"nonce": scan.nonce, "outcome": outcome},
                )
                results.append(
                    ScanResult(
                        nonce=scan.nonce,
                        outcome=outcome,
                        person_id=person.id if person else None,
                        points=points,
                    )
                )
                continue
        if stored is None or stored.event_id != event.id:
            raise InvalidInput(f"nonce {scan.nonce}: already used for another session's scan")
        results.append(
            ScanResult(
                nonce=stored.nonce, outcome=stored.outcome, person_id=stored.person_id, points=stored.points
            )
        )
    return results
