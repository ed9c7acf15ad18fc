"""Isolation: health routes and services of one municipality never show or change another's people, sessions,
registrations or points, whatever was created where (hypothesis)."""

from __future__ import annotations

import uuid

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from core.platform import Platform
from plugins.health.models import Award, Event, Person, Registration, Scan
from plugins.health.schemas import PersonCreate, ScanIn
from plugins.health.services import checkin, events, people
from tests.integration.health.helpers import STAFF, Town, soon

SLUGS = ("miki", "tonosho")
operations = st.lists(
    st.tuples(st.sampled_from(SLUGS), st.sampled_from(["event", "person", "register"]), st.integers(0, 50)),
    min_size=1,
    max_size=8,
)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations)
async def test_health_of_one_municipality_never_reaches_another(
    platform: Platform, client: httpx.AsyncClient, ops: list[tuple[str, str, int]]
) -> None:
    towns = {slug: Town(platform, slug) for slug in SLUGS}
    made: dict[str, dict[str, list[uuid.UUID]]] = {}
    for slug, town in towns.items():  # what earlier examples left is part of the expectation too
        async with town.session() as session:
            made[slug] = {
                "event": list(await session.scalars(select(Event.id))),
                "person": list(await session.scalars(select(Person.id))),
                "register": list(await session.scalars(select(Registration.id))),
            }
    for slug, kind, n in ops:
        town = towns[slug]
        async with town.session() as session:
            ctx = town.ctx()
            if kind == "event" or not made[slug]["event"]:
                event = await town.event(starts_at=soon(), capacity=1 + n % 3)
                made[slug]["event"].append(event.id)
            elif kind == "person" or not made[slug]["person"]:
                person = await people.add_person(
                    session, ctx, STAFF, PersonCreate(name=f"人{n}", name_kana="ヒト", birth_year=1930 + n)
                )
                made[slug]["person"].append(person.id)
            else:
                event_id = made[slug]["event"][n % len(made[slug]["event"])]
                person_id = made[slug]["person"][n % len(made[slug]["person"])]
                taken = await session.scalar(
                    select(Registration.id).where(
                        Registration.event_id == event_id, Registration.person_id == person_id
                    )
                )
                if taken is None:
                    registration = await events.register(session, ctx, STAFF, event_id, person_id)
                    made[slug]["register"].append(registration.id)
                    code = await session.scalar(select(Person.short_code).where(Person.id == person_id))
                    await checkin.check_in(
                        session, ctx, STAFF, event_id, [ScanIn(nonce=uuid.uuid4().hex, code=code)]
                    )

    for slug, town in towns.items():
        other = next(s for s in SLUGS if s != slug)
        listed = {e["id"] for e in (await client.get(town.url("/events"))).json()}
        assert listed <= {str(e) for e in made[slug]["event"]}
        clerk = await town.headers("clerk", roles=("staff",))
        for event_id in made[other]["event"][:3]:
            assert (
                await client.get(town.url(f"/events/{event_id}/registrations"), headers=clerk)
            ).status_code == 404
            foreign_scan = {"scans": [{"nonce": uuid.uuid4().hex, "code": "AAAAAAAA"}]}
            assert (
                await client.post(town.url(f"/events/{event_id}/checkins"), json=foreign_scan, headers=clerk)
            ).status_code == 404
        for person_id in made[other]["person"][:3]:
            assert (
                await client.get(town.url(f"/people/{person_id}/measures"), headers=clerk)
            ).status_code == 404
            if made[slug]["event"]:
                taken = await client.post(
                    town.url(f"/events/{made[slug]['event'][0]}/registrations"),
                    json={"person_id": str(person_id)},
                    headers=clerk,
                )
                assert taken.status_code == 404
        for registration_id in made[other]["register"][:3]:
            assert (
                await client.post(town.url(f"/registrations/{registration_id}/cancel"), headers=clerk)
            ).status_code == 404
        async with town.session() as session:
            for model in (Person, Event, Registration, Scan, Award):
                assert set(await session.scalars(select(model.municipality_id))) <= {town.id}
            assert set(await session.scalars(select(Registration.id))) == set(made[slug]["register"])
            assert set(await session.scalars(select(Registration.state))) <= {"registered", "waitlisted"}
