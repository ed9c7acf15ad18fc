"""No person sees another municipality's notifications or subscriptions, and a topic send in one municipality
never reaches another's subscribers — even the same person, signed in to both.

Random notifications, subscriptions and topic sends are spread over two municipalities; then every person's
inbox and topics are read through the API in each, and on PostgreSQL raw SQL in each municipality's session
counts only that municipality's rows.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from core.notifications import notify
from core.platform import Platform
from tests.notification_support import Person, person, run_jobs

SLUGS = ("miki", "takamatsu")
PEOPLE = 3
TOPICS = ("bousai", "kosodate")
_serial = itertools.count()

operations = st.lists(
    st.one_of(
        st.tuples(st.just("notify"), st.sampled_from(SLUGS), st.integers(0, PEOPLE - 1)),
        st.tuples(
            st.just("subscribe"), st.sampled_from(SLUGS), st.integers(0, PEOPLE - 1), st.sampled_from(TOPICS)
        ),
        st.tuples(
            st.just("unsubscribe"),
            st.sampled_from(SLUGS),
            st.integers(0, PEOPLE - 1),
            st.sampled_from(TOPICS),
        ),
        st.tuples(st.just("send"), st.sampled_from(SLUGS), st.sampled_from(TOPICS)),
    ),
    min_size=1,
    max_size=8,
)


@pytest.fixture
async def town_people(platform: Platform) -> AsyncIterator[dict[str, list[Person]]]:
    """Three people, each signed in to both municipalities (one account, a session in each), plus staff."""
    people: dict[str, list[Person]] = {slug: [] for slug in SLUGS}
    for _ in range(PEOPLE):
        first = await person(platform, SLUGS[0])
        people[SLUGS[0]].append(first)
        people[SLUGS[1]].append(await person(platform, SLUGS[1], account_id=first.id))
    for slug in SLUGS:
        people[f"{slug}:staff"] = [await person(platform, slug, "staff")]
    yield people


async def seen(client: httpx.AsyncClient, who: Person) -> tuple[set[str], set[str]]:
    """The subjects in the person's inbox there, and the topics they subscribed to there."""
    page = await client.get(f"/m/{who.slug}/notifications/inbox", headers=who.headers, params={"limit": 100})
    topics = await client.get(f"/m/{who.slug}/notifications/topics", headers=who.headers)
    assert page.status_code == topics.status_code == 200, (page.text, topics.text)
    return {i["subject"] for i in page.json()["items"]}, {t["name"] for t in topics.json() if t["subscribed"]}


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations)
async def test_inboxes_subscriptions_and_topic_sends_stay_in_their_municipality(
    platform: Platform,
    client: httpx.AsyncClient,
    town_people: dict[str, list[Person]],
    ops: list[tuple[object, ...]],
) -> None:
    inbox: dict[tuple[str, int], set[str]] = {}
    subscribed: dict[tuple[str, int], set[str]] = {}
    for slug in SLUGS:  # what earlier examples left behind belongs to the expectation too
        for index, who in enumerate(town_people[slug]):
            inbox[(slug, index)], subscribed[(slug, index)] = await seen(client, who)

    for op in ops:
        kind, slug = op[0], str(op[1])
        subject = f"{slug}-{next(_serial)}"
        if kind == "notify":
            index = int(op[2])  # type: ignore[call-overload]
            async with platform.sessions.tenant(platform.municipality(slug).id) as session:
                await notify(
                    session,
                    template="core.message",
                    to=[town_people[slug][index].id],
                    context={"subject": subject, "body": "x"},
                )
            inbox[(slug, index)].add(subject)
        elif kind in ("subscribe", "unsubscribe"):
            index, topic = int(op[2]), str(op[3])  # type: ignore[call-overload]
            who = town_people[slug][index]
            method = client.put if kind == "subscribe" else client.delete
            response = await method(f"/m/{slug}/notifications/subscriptions/{topic}", headers=who.headers)
            assert response.status_code in (200, 204), response.text
            (subscribed[(slug, index)].add if kind == "subscribe" else subscribed[(slug, index)].discard)(
                topic
            )
        else:
            topic = str(op[2])
            staff = town_people[f"{slug}:staff"][0]
            response = await client.post(
                f"/m/{slug}/notifications/topics/{topic}/send",
                headers=staff.headers,
                json={"subject": subject, "body": "x"},
            )
            assert response.status_code == 202, response.text
            await run_jobs(platform)  # the fan-out reaches whoever is subscribed when it runs
            for index in range(PEOPLE):
                if topic in subscribed[(slug, index)]:
                    inbox[(slug, index)].add(subject)
    await run_jobs(platform)

    for slug in SLUGS:
        other = next(s for s in SLUGS if s != slug)
        for index, who in enumerate(town_people[slug]):
            assert await seen(client, who) == (inbox[(slug, index)], subscribed[(slug, index)])
            # A session of one municipality is refused at the other's door.
            response = await client.get(f"/m/{other}/notifications/inbox", headers=who.headers)
            assert response.status_code == 403
        if platform.settings.is_postgres:  # row-level security: raw SQL counts only this municipality's rows
            expected = sum(len(inbox[(slug, i)]) for i in range(PEOPLE))
            async with platform.sessions.tenant(platform.municipality(slug).id) as session:
                assert await session.scalar(text("SELECT count(*) FROM notifications")) == expected
                subs = sum(len(subscribed[(slug, i)]) for i in range(PEOPLE))
                assert await session.scalar(text("SELECT count(*) FROM topic_subscriptions")) == subs
