"""People taking part, and who may act for whom.

A person is the resident with an account (their own profile), someone a family member's account acts for
(代理), or someone staff entered from a paper form. Acting for a person is allowed to that person, their proxy,
and staff (``health.manage``); anyone else gets 404, so ids of other people reveal nothing.
"""

from __future__ import annotations

import uuid

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from core.audit import record
from core.exceptions import Conflict, Forbidden, InvalidInput, NotFound
from core.identity.models import Account
from plugins.health.models import Person
from plugins.health.schemas import Actor, PersonCreate, ProfileIn
from plugins.health.services._context import HealthContext
from plugins.health.services._tokens import new_short_code


def _check(ctx: HealthContext, birth_year: int, district: str) -> None:
    this_year = ctx.current().astimezone(ctx.zone).year
    if not this_year - 120 <= birth_year <= this_year:
        raise InvalidInput(f"birth_year: must be between {this_year - 120} and {this_year}, got {birth_year}")
    if ctx.settings.districts and district and district not in ctx.settings.districts:
        raise InvalidInput(f"district: must be one of {', '.join(ctx.settings.districts)}, got {district!r}")
    if len(district) > 40:
        raise InvalidInput("district: at most 40 characters")


async def _insert(session: AsyncSession, person: Person) -> Person:
    """Add with a fresh short code, drawing again on the rare collision."""
    for _ in range(5):
        person.short_code = new_short_code()
        try:
            async with session.begin_nested():
                session.add(person)
        except IntegrityError:
            continue
        return person
    raise Conflict("could not draw a free short code; try again")  # pragma: no cover - 26^8 codes


async def save_profile(session: AsyncSession, ctx: HealthContext, actor: Actor, data: ProfileIn) -> Person:
    """Create or update the caller's own person (name from the account, residency from its residence)."""
    if actor.account_id is None:
        raise Forbidden("a profile belongs to a person: log in, or use a person's access token")
    _check(ctx, data.birth_year, data.district)
    account = await session.get(Account, actor.account_id)
    if account is None:
        raise NotFound("no such account")
    resident = account.residence_municipality_id == ctx.municipality.id
    person = await session.scalar(select(Person).where(Person.account_id == actor.account_id))
    if person is None:
        person = await _insert(
            session,
            Person(
                account_id=actor.account_id,
                name=account.display_name,
                name_kana=" ".join(filter(None, [account.family_name_kana, account.given_name_kana])),
                phone="",
                birth_year=data.birth_year,
                district=data.district,
                resident=resident,
            ),
        )
        action = "health.person_created"
    else:
        person.birth_year, person.district, person.resident = data.birth_year, data.district, resident
        action = "health.person_updated"
    record(
        session,
        actor=actor.ref,
        action=action,
        target_type="health_person",
        target_id=person.id,
        payload={"channel": "self"},
    )
    return person


async def add_person(session: AsyncSession, ctx: HealthContext, actor: Actor, data: PersonCreate) -> Person:
    """A person without an account: staff entering a paper form, or a family member acting for them."""
    if not actor.staff and actor.account_id is None:
        raise Forbidden("family registration is made by a person: log in")
    name, kana, phone = data.name.strip(), data.name_kana.strip(), data.phone.strip()
    if not 1 <= len(name) <= 100:
        raise InvalidInput("name: must be 1 to 100 characters")
    if not 1 <= len(kana) <= 100:
        raise InvalidInput("name_kana: must be 1 to 100 characters")
    if len(phone) > 20 or any(c not in "0123456789-+ " for c in phone):
        raise InvalidInput("phone: digits and hyphens, at most 20 characters")
    _check(ctx, data.birth_year, data.district)
    channel = "staff" if actor.staff else "proxy"
    person = await _insert(
        session,
        Person(
            account_id=None,
            proxy_account_id=None if actor.staff else actor.account_id,
            name=name,
            name_kana=kana,
            phone=phone,
            birth_year=data.birth_year,
            district=data.district,
            resident=data.resident,
        ),
    )
    record(
        session,
        actor=actor.ref,
        action="health.person_created",
        target_type="health_person",
        target_id=person.id,
        payload={"channel": channel},
    )
    return person


async def own_people(session: AsyncSession, actor: Actor) -> list[Person]:
    """The caller's own person and those they act for."""
    if actor.account_id is None:
        raise Forbidden("only a person has a profile: log in, or use a person's access token")
    rows = await session.scalars(
        select(Person)
        .where(or_(Person.account_id == actor.account_id, Person.proxy_account_id == actor.account_id))
        .order_by(Person.created_at)
    )
    return list(rows)


async def search(session: AsyncSession, query: str) -> list[Person]:
    """Staff find someone who registered before (on paper, by phone): by name, kana or phone, at most 50."""
    text = query.strip()
    if not 1 <= len(text) <= 100:
        raise InvalidInput("q: give 1 to 100 characters of a name, kana or phone number")
    pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    rows = await session.scalars(
        select(Person)
        .where(
            or_(
                Person.name.like(pattern, escape="\\"),
                Person.name_kana.like(pattern, escape="\\"),
                Person.phone.like(pattern, escape="\\"),
            )
        )
        .order_by(Person.name_kana, Person.id)
        .limit(50)
    )
    return list(rows)


def may_act_for(person: Person, actor: Actor) -> bool:
    if actor.staff:
        return True
    return actor.account_id is not None and actor.account_id in (person.account_id, person.proxy_account_id)


async def person_for(session: AsyncSession, actor: Actor, person_id: uuid.UUID | None) -> Person:
    """The person the caller acts for: ``person_id``, or their own profile when omitted.

    :raises NotFound: no such person here, or not one the caller may act for.
    :raises InvalidInput: ``person_id`` omitted and the caller has no profile yet.
    """
    if person_id is None:
        if actor.account_id is None:
            raise Forbidden("name the person (person_id): a key acts for no person of its own")
        person = await session.scalar(select(Person).where(Person.account_id == actor.account_id))
        if person is None:
            raise InvalidInput("person_id: you have no health profile yet (PUT /health/me)")
        return person
    person = await session.scalar(select(Person).where(Person.id == person_id))
    if person is None or not may_act_for(person, actor):
        raise NotFound(f"no person {person_id}")
    return person


def notify_to(person: Person) -> list[uuid.UUID]:
    """Accounts that hear about a person's registration: their own, and their family proxy's."""
    return [a for a in (person.account_id, person.proxy_account_id) if a is not None]
