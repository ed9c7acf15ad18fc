"""Sessions over HTTP: registration by the person, by family for a named person, by staff from a paper form;
eligibility; the waitlist promoting the next person on a cancellation, with a notice; each step audited."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from core.audit import AuditEvent
from tests.integration.health.helpers import Town


async def _profile(client: httpx.AsyncClient, town: Town, headers: dict[str, str], year: int = 1950) -> dict:
    response = await client.put(
        town.url("/me"), json={"birth_year": year, "district": "井戸"}, headers=headers
    )
    assert response.status_code == 200, response.text
    return response.json()


async def test_registration_by_self_family_and_paper_form_with_waitlist_promotion(
    town: Town, client: httpx.AsyncClient
) -> None:
    event = await town.event(capacity=2, min_age=60, programme="esports")
    hanako = await town.headers("hanako")
    son = await town.headers("son")
    clerk = await town.headers("clerk", roles=("staff",))
    me = await _profile(client, town, hanako)
    assert me["resident"] is True and len(me["short_code"]) == 8

    grandma = await client.post(
        town.url("/people"),
        json={"name": "三木 ウメ", "name_kana": "ミキ ウメ", "birth_year": 1940, "resident": True},
        headers=son,
    )
    assert grandma.status_code == 201, grandma.text
    paper = await client.post(
        town.url("/people"),
        json={"name": "井戸 一郎", "name_kana": "イド イチロウ", "phone": "087-898-0000", "birth_year": 1945},
        headers=clerk,
    )
    assert paper.status_code == 201
    found = await client.get(town.url("/people"), params={"q": "イド"}, headers=clerk)
    assert [p["id"] for p in found.json()] == [paper.json()["id"]]
    assert (await client.get(town.url("/people"), params={"q": "%"}, headers=clerk)).json() == []

    path = town.url(f"/events/{event.id}/registrations")
    first = await client.post(path, json={}, headers=hanako)
    assert first.json()["state"] == "registered" and first.json()["channel"] == "self"
    second = await client.post(path, json={"person_id": grandma.json()["id"]}, headers=son)
    assert second.json()["state"] == "registered" and second.json()["channel"] == "proxy"
    third = await client.post(path, json={"person_id": paper.json()["id"]}, headers=clerk)
    assert third.json()["state"] == "waitlisted" and third.json()["waitlist_position"] == 1
    assert third.json()["channel"] == "staff"

    again = await client.post(path, json={}, headers=hanako)
    assert again.status_code == 409
    # family cannot act for a stranger: the paper person is not theirs
    assert (await client.post(path, json={"person_id": paper.json()["id"]}, headers=son)).status_code == 404

    cancelled = await client.post(town.url(f"/registrations/{second.json()['id']}/cancel"), headers=son)
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    roster = (await client.get(path, headers=clerk)).json()
    states = {r["name"]: r["state"] for r in roster}
    assert states == {"hanako": "registered", "三木 ウメ": "cancelled", "井戸 一郎": "registered"}

    async with town.session() as session:
        actions = list(
            await session.scalars(select(AuditEvent.action).where(AuditEvent.action.like("health.%")))
        )
        payloads = list(
            await session.scalars(select(AuditEvent.payload).where(AuditEvent.action.like("health.%")))
        )
    assert {"health.registered", "health.waitlisted", "health.cancelled", "health.promoted"} <= set(actions)
    assert not any("ウメ" in str(p) or "087-898" in str(p) for p in payloads)


async def test_promotion_notifies_the_person_waiting(town: Town, client: httpx.AsyncClient) -> None:
    event = await town.event(capacity=1)
    taro, jiro = await town.headers("taro"), await town.headers("jiro")
    await _profile(client, town, taro)
    await _profile(client, town, jiro)
    path = town.url(f"/events/{event.id}/registrations")
    held = (await client.post(path, json={}, headers=taro)).json()
    assert (await client.post(path, json={}, headers=jiro)).json()["state"] == "waitlisted"
    assert await town.notifications("jiro") == []
    await client.post(town.url(f"/registrations/{held['id']}/cancel"), headers=taro)
    assert [n.template for n in await town.notifications("jiro")] == ["health.promoted"]
    assert "eスポーツで脳トレ" in (await town.notifications("jiro"))[0].subject


async def test_eligibility_and_bad_input_change_nothing(town: Town, client: httpx.AsyncClient) -> None:
    event = await town.event(min_age=65, residents_only=True)
    young, outsider = await town.headers("young"), await town.headers("outsider", resident=False)
    await _profile(client, town, young, year=1990)
    await _profile(client, town, outsider, year=1940)
    path = town.url(f"/events/{event.id}/registrations")
    too_young = await client.post(path, json={}, headers=young)
    assert too_young.status_code == 422 and "65" in too_young.json()["detail"]
    not_resident = await client.post(path, json={}, headers=outsider)
    assert not_resident.status_code == 422 and "residents" in not_resident.json()["detail"]
    bad_year = await client.put(town.url("/me"), json={"birth_year": 1800}, headers=young)
    assert bad_year.status_code == 422 and "birth_year" in bad_year.json()["detail"]
    listed = (await client.get(town.url("/events"))).json()
    assert [(e["id"], e["registered"], e["waitlisted"]) for e in listed] == [(str(event.id), 0, 0)]
