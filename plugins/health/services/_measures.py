"""Before/after measures (要配慮個人情報), only under a recorded consent.

Staff record a consent for a person and a programme (on paper or in the app), then measures of that programme.
No measure is stored without a live consent. Withdrawing a consent deletes every measure of that person and
programme in the same transaction: nothing is kept "just in case", and statistics computed earlier stay as
published. The audit log records who recorded or withdrew what and how many measures went, never a value.
"""

from __future__ import annotations

import math
import uuid

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.audit import record
from core.exceptions import Conflict, InvalidInput
from plugins.health.models import Consent, Measure, Person
from plugins.health.schemas import Actor, ConsentOut, MeasureIn, MeasureOut
from plugins.health.services._context import HealthContext
from plugins.health.services._events import _PROGRAMME, get_event
from plugins.health.services._people import person_for

RANGES = {"grip_strength_kg": (0.0, 100.0), "timed_up_and_go_s": (1.0, 300.0)}
"""Plausible values of each measure: outside them is a typing mistake."""


def _programme(programme: str) -> str:
    if not _PROGRAMME.match(programme):
        raise InvalidInput("programme: lowercase letters, digits, '-' or '_', at most 40 characters")
    return programme


async def _consent(session: AsyncSession, person_id: uuid.UUID, programme: str) -> Consent | None:
    return await session.scalar(
        select(Consent).where(Consent.person_id == person_id, Consent.programme == programme)
    )


async def give_consent(
    session: AsyncSession, ctx: HealthContext, actor: Actor, person_id: uuid.UUID, programme: str
) -> ConsentOut:
    """Record (or renew after a withdrawal) a person's consent to measures of ``programme``."""
    person = await person_for(session, actor, person_id)
    programme = _programme(programme)
    consent = await _consent(session, person.id, programme)
    if consent is None:
        consent = Consent(id=uuid.uuid4(), person_id=person.id, programme=programme, given_at=ctx.current())
        session.add(consent)
    elif consent.withdrawn_at is not None:
        consent.given_at, consent.withdrawn_at = ctx.current(), None
    else:
        return ConsentOut(person_id=person.id, programme=programme, active=True)
    await session.flush()
    record(
        session,
        actor=actor.ref,
        action="health.consent_given",
        target_type="health_consent",
        target_id=consent.id,
        payload={"person_id": person.id, "programme": programme},
    )
    return ConsentOut(person_id=person.id, programme=programme, active=True)


async def withdraw_consent(
    session: AsyncSession, ctx: HealthContext, actor: Actor, person_id: uuid.UUID | None, programme: str
) -> ConsentOut:
    """Withdraw a consent and delete the measures it covered. :raises Conflict: no live consent."""
    person = await person_for(session, actor, person_id)
    programme = _programme(programme)
    consent = await _consent(session, person.id, programme)
    if consent is None or consent.withdrawn_at is not None:
        raise Conflict(f"no live consent to {programme} measures for this person")
    consent.withdrawn_at = ctx.current()
    deleted = await session.execute(
        delete(Measure)
        .where(Measure.person_id == person.id, Measure.programme == programme)
        .execution_options(synchronize_session=False)
    )
    count = int(deleted.rowcount or 0)  # type: ignore[attr-defined]
    record(
        session,
        actor=actor.ref,
        action="health.consent_withdrawn",
        target_type="health_consent",
        target_id=consent.id,
        payload={"person_id": person.id, "programme": programme, "deleted": count},
    )
    return ConsentOut(person_id=person.id, programme=programme, active=False, measures_deleted=count)


async def record_measure(session: AsyncSession, ctx: HealthContext, actor: Actor, data: MeasureIn) -> Measure:
    """:raises InvalidInput: an implausible value, or a session without a programme.
    :raises Conflict: no live consent of the person to this programme's measures."""
    low, high = RANGES[data.kind]
    if not math.isfinite(data.value) or not low <= data.value <= high:
        raise InvalidInput(f"value: {data.kind} must be between {low:g} and {high:g}, got {data.value}")
    person = await person_for(session, actor, data.person_id)
    event = await get_event(session, data.event_id)
    if not event.programme:
        raise InvalidInput("event_id: this session belongs to no programme; measures are kept per programme")
    consent = await _consent(session, person.id, event.programme)
    if consent is None or consent.withdrawn_at is not None:
        raise Conflict(f"no recorded consent to {event.programme} measures for this person; record one first")
    measure = Measure(
        id=uuid.uuid4(),
        person_id=person.id,
        event_id=event.id,
        programme=event.programme,
        kind=data.kind,
        phase=data.phase,
        value=data.value,
        recorded_at=ctx.current(),
    )
    session.add(measure)
    record(
        session,
        actor=actor.ref,
        action="health.measure_recorded",
        target_type="health_measure",
        target_id=measure.id,
        payload={"person_id": person.id, "event_id": event.id, "kind": data.kind},
    )
    return measure


async def measures_of(session: AsyncSession, actor: Actor, person_id: uuid.UUID) -> list[MeasureOut]:
    person: Person = await person_for(session, actor, person_id)
    rows = await session.scalars(
        select(Measure).where(Measure.person_id == person.id).order_by(Measure.recorded_at, Measure.id)
    )
    return [
        MeasureOut(
            id=m.id,
            event_id=m.event_id,
            programme=m.programme,
            kind=m.kind,
            phase=m.phase,
            value=m.value,
            recorded_at=m.recorded_at,
        )
        for m in rows
    ]


__all__ = ["give_consent", "measures_of", "record_measure", "withdraw_consent"]
