"""``GET /audit/events``: an administrator's (or a SIEM's, by API key) view of one municipality's audit log —
filters, keyset pages, and the guard."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from core.audit import AuditEvent
from core.db import utcnow
from core.identity.apikeys import create_api_key
from core.platform import Platform
from core.tenancy import service
from tests.conftest import enabled_in_manifests
from tests.integration.test_audit_log import record_events


async def api_key(platform: Platform, slug: str, *scopes: str) -> dict[str, str]:
    _, key = await create_api_key(
        platform,
        platform.municipality(slug),
        name="siem",
        scopes=scopes,
        expires_at=utcnow() + timedelta(days=1),
    )
    return {"x-api-key": key}


async def all_pages(
    client: httpx.AsyncClient, headers: dict[str, str], **params: Any
) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(100):
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = await client.get("/m/miki/audit/events", params=query, headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("pagination does not end")


async def test_pages_through_the_whole_log_newest_first(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    await record_events(platform, "miki", 7)
    await record_events(platform, "takamatsu", 2)
    headers = await api_key(platform, "miki", "core:audit")
    items = await all_pages(client, headers, limit=3)
    miki = platform.municipality("miki")
    async with platform.sessions.tenant(miki.id) as session:
        stored = {e.id for e in await session.scalars(select(AuditEvent))}
    assert [uuid.UUID(i["id"]) for i in items] == list(
        dict.fromkeys(uuid.UUID(i["id"]) for i in items)
    )  # no repeats
    assert {uuid.UUID(i["id"]) for i in items} == stored
    keys = [(i["recorded_at"], i["id"]) for i in items]
    assert keys == sorted(keys, reverse=True)
    assert set(items[0]) == {
        "id",
        "recorded_at",
        "actor",
        "action",
        "target_type",
        "target_id",
        "payload",
        "seq",
    }


async def test_filters_by_actor_action_target_and_time(platform: Platform, client: httpx.AsyncClient) -> None:
    await service.set_plugin_enabled(platform, "miki", "opinion_box", True)
    await record_events(platform, "miki", 3)
    headers = await api_key(platform, "miki", "core:audit")

    enabled = await all_pages(client, headers, action="core.plugin_enabled")
    assert {i["target_id"] for i in enabled} == {*enabled_in_manifests()["miki"], "opinion_box"}
    assert all(i["actor"] == "cli" for i in enabled)
    core = await all_pages(client, headers, action="core.*")
    assert core and all(i["action"].startswith("core.") for i in core)
    posted = await all_pages(client, headers, actor="system")
    assert [i["action"] for i in posted] == ["notices.posted"] * 3
    one = await all_pages(client, headers, target_type="notice", target_id="n-1")
    assert [(i["target_id"], i["payload"]) for i in one] == [("n-1", {"index": 1})]

    middle = posted[1]["recorded_at"]
    assert [i["id"] for i in await all_pages(client, headers, actor="system", since=middle)] == [
        posted[0]["id"],
        posted[1]["id"],
    ]
    assert [i["id"] for i in await all_pages(client, headers, actor="system", until=middle)] == [
        posted[2]["id"]
    ]


@pytest.mark.parametrize(
    "params, fragment",
    [
        ({"limit": 0}, "limit must be between 1 and 500"),
        ({"limit": 501}, "limit must be between 1 and 500"),
        ({"cursor": "bm90LWEtY3Vyc29y"}, "is not one this API gave out"),
        ({"since": "2026-04-01T09:00:00"}, "time zone"),
    ],
)
async def test_bad_parameters_are_problems(
    platform: Platform, client: httpx.AsyncClient, params: dict[str, Any], fragment: str
) -> None:
    response = await client.get(
        "/m/miki/audit/events", params=params, headers=await api_key(platform, "miki", "core:audit")
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert fragment in response.json()["detail"]


async def test_only_holders_of_core_read_audit_in_that_municipality_may_read(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    assert (await client.get("/m/miki/audit/events")).status_code == 401
    wrong_scope = await api_key(platform, "miki", "opinion_box:read")
    assert (await client.get("/m/miki/audit/events", headers=wrong_scope)).status_code == 403
    miki_key = await api_key(platform, "miki", "core:audit")
    assert (await client.get("/m/takamatsu/audit/events", headers=miki_key)).status_code == 403
    takamatsu_key = await api_key(platform, "takamatsu", "core:audit")
    response = await client.get("/m/takamatsu/audit/events", headers=takamatsu_key)
    assert response.status_code == 200
    assert {i["target_id"] for i in response.json()["items"] if i["target_type"] == "municipality"} == {
        "takamatsu"
    }
