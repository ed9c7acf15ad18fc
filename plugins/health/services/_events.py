"""Sessions, registration, the waitlist and its automatic promotion.

A registration takes a place while the session has one, else joins the waitlist. Cancelling a place promotes
the longest-waiting person in the same transaction and tells them (and their family proxy). The session row is
locked while places are counted (``FOR UPDATE`` on PostgreSQL; SQLite serialises write transactions), so two
racing registrations never both take the last place.
"""

from __future__ import annotations

import re
import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.audit import record
from core.exceptions import Conflict, InvalidInput, NotFound
from plugins.health.models import Event, Person, Registration
from plugins.health.schemas import Actor, EventCreate, EventOut, RegistrationOut, RosterEntry
from plugins.health.services._context import HealthContext
from plugins.health.services._people import may_act_for, notify_to, person_for

_PROGRAMME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
LIVE = ("registered", "waitlisted")


async def create_event(session: AsyncSession, ctx: HealthContext, actor: Actor, data: EventCreate) -> Event:
    """:raises InvalidInput: naming the field and the rule."""
    for field in ("title", "venue"):
        value = getattr(data, field).strip()
        if not 1 <= len(value) <= 200:
            raise InvalidInput(f"{field}: must be 1 to 200 characters")
    for field in ("starts_at", "ends_at"):
        if getattr(data, field).tzinfo is None:
            raise InvalidInput(f"{field}: must include a time zone offset, e.g. 2026-12-01T10:00:00+09:00")
    if data.ends_at <= data.starts_at:
        raise InvalidInput("ends_at: must be later than starts_at")
    if not 1 <= data.capacity <= 10_000:
        raise InvalidInput(f"capacity: must be between 1 and 10000, got {data.capacity}")
    if data.min_age is not None and not 0 <= data.min_age <= 120:
        raise InvalidInput(f"min_age: must be between 0 and 120, got {data.min_age}")
    if data.programme and not _PROGRAMME.match(data.programme):
        raise InvalidInput("programme: lowercase letters, digits, '-' or '_', at most 40 characters")
    event = Event(
        title=data.title.strip(),
        title_kana=data.title_kana.strip(),
        description=data.description,
        kind=data.kind,
        programme=data.programme,
        venue=data.venue.strip(),
        address=data.address.strip(),
        starts_at=data.starts_at,
        ends_at=data.ends_at,
        capacity=data.capacity,
        min_age=data.min_age,
        residents_only=data.residents_only,
    )
    session.add(event)
    await session.flush()
    record(
        session,
        actor=actor.ref,
        action="health.event_created",
        target_type="health_event",
        target_id=event.id,
        payload={"kind": event.kind, "capacity": event.capacity},
    )
    return event


async def _counts(session: AsyncSession, event_ids: list[uuid.UUID]) -> dict[tuple[uuid.UUID, str], int]:
    if not event_ids:
        return {}
    rows = await session.execute(
        select(Registration.event_id, Registration.state, func.count())
        .where(Registration.event_id.in_(event_ids), Registration.state.in_(LIVE))
        .group_by(Registration.event_id, Registration.state)
    )
    return {(event_id, state): count for event_id, state, count in rows.all()}


def _out(event: Event, counts: dict[tuple[uuid.UUID, str], int]) -> EventOut:
    return EventOut(
        id=event.id,
        title=event.title,
        title_kana=event.title_kana,
        description=event.description,
        kind=event.kind,
        programme=event.programme,
        venue=event.venue,
        address=event.address,
        starts_at=event.starts_at,
        ends_at=event.ends_at,
        capacity=event.capacity,
        registered=counts.get((event.id, "registered"), 0),
        waitlisted=counts.get((event.id, "waitlisted"), 0),
        min_age=event.min_age,
        residents_only=event.residents_only,
    )


async def upcoming(session: AsyncSession, ctx: HealthContext) -> list[Event]:
    rows = await session.scalars(
        select(Event).where(Event.ends_at > ctx.current()).order_by(Event.starts_at, Event.id)
    )
    return list(rows)


async def upcoming_out(session: AsyncSession, ctx: HealthContext) -> list[EventOut]:
    events = await upcoming(session, ctx)
    counts = await _counts(session, [e.id for e in events])
    return [_out(e, counts) for e in events]


async def event_out(session: AsyncSession, event: Event) -> EventOut:
    return _out(event, await _counts(session, [event.id]))


async def get_event(session: AsyncSession, event_id: uuid.UUID, *, lock: bool = False) -> Event:
    query = select(Event).where(Event.id == event_id)
    event = await session.scalar(query.with_for_update() if lock else query)
    if event is None:
        raise NotFound(f"no session {event_id}")
    return event


def age_in(person: Person, event: Event, ctx: HealthContext) -> int:
    """The age the person reaches in the session's calendar year (only a birth year is asked)."""
    return ctx.local_date(event.starts_at).year - person.birth_year


def eligibility_problem(person: Person, event: Event, ctx: HealthContext) -> str | None:
    if event.min_age is not None and age_in(person, event, ctx) < event.min_age:
        return f"this session is for people aged {event.min_age} or over"
    if event.residents_only and not person.resident:
        return "this session is for residents registered in the municipality"
    return None


async def _position(session: AsyncSession, registration: Registration) -> int | None:
    if registration.state != "waitlisted":
        return None
    ahead = await session.scalar(
        select(func.count()).where(
            Registration.event_id == registration.event_id,
            Registration.state == "waitlisted",
            Registration.created_at < registration.created_at,
        )
    )
    return (ahead or 0) + 1


async def registration_out(session: AsyncSession, registration: Registration) -> RegistrationOut:
    return RegistrationOut(
        id=registration.id,
        event_id=registration.event_id,
        person_id=registration.person_id,
        state=registration.state,
        channel=registration.channel,
        checked_in=registration.checked_in_at is not None,
        waitlist_position=await _position(session, registration),
    )


async def register(
    session: AsyncSession, ctx: HealthContext, actor: Actor, event_id: uuid.UUID, person_id: uuid.UUID | None
) -> Registration:
    """Take a place, or join the waitlist when the session is full.

    :raises NotFound: no such session or person (or not one the caller acts for).
    :raises InvalidInput: the person is not eligible, or the session has started.
    :raises Conflict: the person already holds a place or waits for one.
    """
    person = await person_for(session, actor, person_id)
    event = await get_event(session, event_id, lock=True)
    if event.starts_at <= ctx.current():
        raise InvalidInput("event_id: this session has already started")
    if (problem := eligibility_problem(person, event, ctx)) is not None:
        raise InvalidInput(f"person_id: {problem}")
    existing = await session.scalar(
        select(Registration.id).where(
            Registration.event_id == event.id,
            Registration.person_id == person.id,
            Registration.state.in_(LIVE),
        )
    )
    if existing is not None:
        raise Conflict("this person is already registered for this session", registration_id=str(existing))
    taken = await session.scalar(
        select(func.count()).where(Registration.event_id == event.id, Registration.state == "registered")
    )
    if person.account_id is not None and person.account_id == actor.account_id:
        channel = "self"
    else:
        channel = "proxy" if person.proxy_account_id == actor.account_id and not actor.staff else "staff"
    registration = Registration(
        event_id=event.id,
        person_id=person.id,
        state="registered" if (taken or 0) < event.capacity else "waitlisted",
        channel=channel,
        created_at=ctx.current(),
    )
    session.add(registration)
    await session.flush()
    record(
        session,
        actor=actor.ref,
        action=f"health.{registration.state}",
        target_type="health_registration",
        target_id=registration.id,
        payload={"event_id": event.id, "channel": channel},
    )
    return registration


async def cancel(
    session: AsyncSession, ctx: HealthContext, actor: Actor, registration_id: uuid.UUID
) -> Registration:
    """Cancel a place or a waitlist entry; a freed place goes to the next person waiting.

    :raises NotFound: no such registration the caller may act for. :raises Conflict: already cancelled.
    """
    registration = await session.scalar(select(Registration).where(Registration.id == registration_id))
    person = (
        await session.scalar(select(Person).where(Person.id == registration.person_id))
        if registration is not None
        else None
    )
    if registration is None or person is None or not may_act_for(person, actor):
        raise NotFound(f"no registration {registration_id}")
    event = await get_event(session, registration.event_id, lock=True)
    await session.refresh(registration)
    if registration.state not in LIVE:
        raise Conflict(f"this registration is {registration.state}", state=registration.state)
    freed = registration.state == "registered"
    registration.state = "cancelled"
    record(
        session,
        actor=actor.ref,
        action="health.cancelled",
        target_type="health_registration",
        target_id=registration.id,
        payload={"event_id": event.id},
    )
    if freed and event.starts_at > ctx.current():
        await promote(session, ctx, event)
    return registration


async def promote(session: AsyncSession, ctx: HealthContext, event: Event) -> list[Registration]:
    """Give free places to the people waiting longest, and tell each of them."""
    from core.notifications import notify

    taken = await session.scalar(
        select(func.count()).where(Registration.event_id == event.id, Registration.state == "registered")
    )
    free = event.capacity - (taken or 0)
    if free <= 0:
        return []
    waiting = list(
        await session.scalars(
            select(Registration)
            .where(Registration.event_id == event.id, Registration.state == "waitlisted")
            .order_by(Registration.created_at, Registration.id)
            .limit(free)
        )
    )
    for registration in waiting:
        registration.state = "registered"
        record(
            session,
            actor="plugin:health",
            action="health.promoted",
            target_type="health_registration",
            target_id=registration.id,
            payload={"event_id": event.id},
        )
        person = await session.scalar(select(Person).where(Person.id == registration.person_id))
        if person is not None and (to := notify_to(person)):
            await notify(
                session,
                template="health.promoted",
                to=to,
                context=_notice_context(ctx, event, registration),
                key=f"health:promoted:{registration.id}",
            )
    return waiting


def _notice_context(ctx: HealthContext, event: Event, registration: Registration) -> dict[str, str]:
    local = event.starts_at.astimezone(ctx.zone)
    return {
        "title": event.title,
        "venue": event.venue,
        "when": local.strftime("%Y-%m-%d %H:%M"),
        "registration_id": str(registration.id),
    }


async def roster(session: AsyncSession, event_id: uuid.UUID) -> list[RosterEntry]:
    """Everyone registered or waiting, with what staff need at the door (name, kana, phone)."""
    await get_event(session, event_id)
    rows = await session.execute(
        select(Registration, Person)
        .join(Person, Person.id == Registration.person_id)
        .where(Registration.event_id == event_id)
        .order_by(Registration.created_at, Registration.id)
    )
    return [
        RosterEntry(
            registration_id=r.id,
            person_id=p.id,
            name=p.name,
            name_kana=p.name_kana,
            phone=p.phone,
            state=r.state,
            channel=r.channel,
            checked_in=r.checked_in_at is not None,
        )
        for r, p in rows.all()
    ]
