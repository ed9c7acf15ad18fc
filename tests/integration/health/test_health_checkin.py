"""Check-in at the venue: the QR card and the typed short code; a second scan of a person is recognised and pays
nothing; a batch replayed after a network loss gets the same answers and changes nothing."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import func, select

from plugins.health.models import Award, Registration
from plugins.health.services import tokens
from tests.integration.health.helpers import Town, soon


def nonce() -> str:
    return uuid.uuid4().hex


async def test_scans_check_in_once_and_replays_answer_the_same(town: Town, client: httpx.AsyncClient) -> None:
    event = await town.event(starts_at=soon())
    ume, clerk = await town.headers("ume"), await town.headers("clerk", roles=("staff",))
    me = (await client.put(town.url("/me"), json={"birth_year": 1944}, headers=ume)).json()
    await client.post(town.url(f"/events/{event.id}/registrations"), json={}, headers=ume)
    card = await client.get(town.url(f"/people/{me['id']}/card.svg"), headers=ume)
    assert card.status_code == 200 and card.headers["content-type"].startswith("image/svg+xml")
    token = tokens.make_token(town.ctx().code_key, "miki", uuid.UUID(me["id"]))

    batch = {
        "scans": [
            {"nonce": (first := nonce()), "token": token},
            {"nonce": (second := nonce()), "code": me["short_code"].lower()},
            {"nonce": (forged := nonce()), "token": token[:-2] + "xx"},
        ]
    }
    path = town.url(f"/events/{event.id}/checkins")
    answer = await client.post(path, json=batch, headers=clerk)
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert [(r["nonce"], r["outcome"]) for r in results] == [
        (first, "checked_in"),
        (second, "duplicate"),
        (forged, "unknown"),
    ]
    assert results[0]["points"] == 10 and results[1]["points"] == 0

    replay = await client.post(path, json=batch, headers=clerk)
    assert replay.json() == answer.json()
    async with town.session() as session:
        assert await session.scalar(select(func.count()).select_from(Award)) == 1
        registration = await session.scalar(select(Registration))
    assert registration is not None and registration.checked_in_at is not None
    mine = (await client.get(town.url("/people/mine"), headers=ume)).json()
    assert mine[0]["points"] == 10


async def test_a_malformed_batch_applies_nothing(town: Town, client: httpx.AsyncClient) -> None:
    event = await town.event(starts_at=soon())
    ume, clerk = await town.headers("ume"), await town.headers("clerk", roles=("staff",))
    me = (await client.put(town.url("/me"), json={"birth_year": 1944}, headers=ume)).json()
    await client.post(town.url(f"/events/{event.id}/registrations"), json={}, headers=ume)
    bad = await client.post(
        town.url(f"/events/{event.id}/checkins"),
        json={"scans": [{"nonce": nonce(), "code": me["short_code"]}, {"nonce": "short", "code": "X"}]},
        headers=clerk,
    )
    assert bad.status_code == 422 and "scans[1].nonce" in bad.json()["detail"]
    async with town.session() as session:
        assert await session.scalar(select(Registration.checked_in_at)) is None


async def test_another_towns_card_is_unknown_here(
    town: Town, tonosho: Town, client: httpx.AsyncClient
) -> None:
    event = await town.event(starts_at=soon())
    clerk = await town.headers("clerk", roles=("staff",))
    foreign = tokens.make_token(town.ctx().code_key, "tonosho", uuid.uuid4())
    answer = await client.post(
        town.url(f"/events/{event.id}/checkins"),
        json={"scans": [{"nonce": nonce(), "token": foreign}, {"nonce": nonce(), "code": "AAAAAAAA"}]},
        headers=clerk,
    )
    assert [r["outcome"] for r in answer.json()["results"]] == ["unknown", "unknown"]


async def test_check_in_is_refused_long_before_the_session(town: Town, client: httpx.AsyncClient) -> None:
    event = await town.event(days=7)
    clerk = await town.headers("clerk", roles=("staff",))
    early = await client.post(
        town.url(f"/events/{event.id}/checkins"),
        json={"scans": [{"nonce": nonce(), "code": "AAAAAAAA"}]},
        headers=clerk,
    )
    assert early.status_code == 422 and "opens 12 hours before" in early.json()["detail"]
