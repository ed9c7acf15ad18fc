"""Read path: the public list of notices, one page of the visible ones with their count (the notices plugin).

Each municipality (and the reference) holds the same 50 notices; a request reads the first page of 20.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.load import Request
from bench.reference.notices import notices
from bench.report import at_least, below
from bench.scenarios.base import REFERENCE_HOST, Scenario, host_of
from core.db import utcnow
from core.platform import Platform
from core.tenancy.registry import Municipality
from plugins.notices import services
from plugins.notices.schemas import NoticeCreate

SEEDED = 50
CATEGORIES = ("general", "bousai", "kosodate", "event")


def seed_notices() -> list[NoticeCreate]:
    """The notices every side holds: published over the past two days, so all are visible."""
    now = utcnow().replace(microsecond=0)
    return [
        NoticeCreate(
            title=f"お知らせ {i}",
            body="町からのお知らせです。" * 20,
            category=CATEGORIES[i % len(CATEGORIES)],
            published_at=now - timedelta(hours=i + 1),
        )
        for i in range(SEEDED)
    ]


class NoticesRead(Scenario):
    name = "notices_read"
    title = "notices read"
    order = 20
    plugins = {"notices": {}}
    reference_module = "bench.reference.notices"
    expect_status = 200
    goals = {"ratio": at_least(0.6), "p50_ms": below(50)}

    async def platform_requests(
        self, platform: Platform, municipalities: Sequence[Municipality], total: int
    ) -> list[Request]:
        for municipality in municipalities:
            settings = platform.plugin_settings(municipality, "notices")
            async with platform.sessions.tenant(municipality.id) as session:
                for notice in seed_notices():
                    await services.post_notice(session, settings, notice, actor="cli")
        return [Request(method="GET", path="/notices/", host=host_of(m)) for m in municipalities]

    async def reference_requests(self, engine: AsyncEngine, total: int) -> list[Request]:
        now = utcnow()
        rows = [
            {
                "id": uuid.uuid4(),
                "category": n.category,
                "title": n.title,
                "body": n.body,
                "published_at": n.published_at,
                "expires_at": None,
                "created_at": now,
                "updated_at": now,
            }
            for n in seed_notices()
        ]
        async with engine.begin() as conn:
            await conn.execute(insert(notices), rows)
        return [Request(method="GET", path="/notices/", host=REFERENCE_HOST)]


SCENARIO = NoticesRead()
