"""Measures are 要配慮個人情報: none is stored without a recorded consent, and withdrawing the consent deletes
every measure it covered; the audit log keeps who did what, never a value."""

from __future__ import annotations

import httpx
from sqlalchemy import func, select

from core.audit import AuditEvent
from plugins.health.models import Measure
from tests.integration.health.helpers import Town


async def test_consent_gates_measures_and_withdrawal_deletes_them(
    town: Town, client: httpx.AsyncClient
) -> None:
    event = await town.event(programme="esports")
    plain = await town.event(title="健康ウォーク")
    ume, clerk = await town.headers("ume"), await town.headers("clerk", roles=("staff",))
    me = (await client.put(town.url("/me"), json={"birth_year": 1944}, headers=ume)).json()
    measure = {
        "person_id": me["id"],
        "event_id": str(event.id),
        "kind": "grip_strength_kg",
        "phase": "before",
    }

    refused = await client.post(town.url("/measures"), json=measure | {"value": 21.5}, headers=clerk)
    assert refused.status_code == 409 and "consent" in refused.json()["detail"]
    consent = {"person_id": me["id"], "programme": "esports"}
    assert (await client.post(town.url("/consents"), json=consent, headers=clerk)).status_code == 201
    for phase, value in (("before", 21.5), ("after", 23.0)):
        saved = await client.post(
            town.url("/measures"), json=measure | {"phase": phase, "value": value}, headers=clerk
        )
        assert saved.status_code == 201, saved.text
    implausible = await client.post(town.url("/measures"), json=measure | {"value": 250}, headers=clerk)
    assert implausible.status_code == 422 and "value" in implausible.json()["detail"]
    no_programme = await client.post(
        town.url("/measures"), json=measure | {"event_id": str(plain.id), "value": 20}, headers=clerk
    )
    assert no_programme.status_code == 422
    mine = (await client.get(town.url(f"/people/{me['id']}/measures"), headers=ume)).json()
    assert [(m["phase"], m["value"]) for m in mine] == [("before", 21.5), ("after", 23.0)]
    assert (
        await client.post(town.url("/measures"), json=measure | {"value": 20}, headers=ume)
    ).status_code == 403

    withdrawn = await client.post(town.url("/consents/withdraw"), json=consent, headers=ume)
    assert withdrawn.status_code == 200 and withdrawn.json()["measures_deleted"] == 2
    assert (await client.get(town.url(f"/people/{me['id']}/measures"), headers=clerk)).json() == []
    after = await client.post(town.url("/measures"), json=measure | {"value": 22}, headers=clerk)
    assert after.status_code == 409
    async with town.session() as session:
        assert await session.scalar(select(func.count()).select_from(Measure)) == 0
        payloads = list(
            await session.scalars(select(AuditEvent.payload).where(AuditEvent.action.like("health.%")))
        )
    assert not any("21.5" in str(p) or "23.0" in str(p) for p in payloads)
    assert (await client.post(town.url("/consents/withdraw"), json=consent, headers=ume)).status_code == 409
