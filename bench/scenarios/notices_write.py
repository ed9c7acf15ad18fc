"""Write path: an authenticated POST that writes a row with its audit event (the notices plugin).

Platform: ``POST /notices/`` with an API key of the municipality (tenant binding by ``Host``, key check, plugin
guard, validation, insert, audit event). Reference: the same validation and insert, no key, no audit.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.load import Request
from bench.report import at_least
from bench.scenarios.base import REFERENCE_HOST, Scenario, api_keys, host_of
from core.platform import Platform
from core.tenancy.registry import Municipality

BODY = msgspec.json.encode(
    {
        "title": "防災訓練のお知らせ",
        "body": "11月30日 9時から、町内一斉の防災訓練を行います。",
        "category": "bousai",
    }
).decode()


class NoticesWrite(Scenario):
    name = "notices_write"
    title = "notices write"
    order = 10
    plugins = {"notices": {}}
    reference_module = "bench.reference.notices"
    expect_status = 201
    goals = {"ratio": at_least(0.5)}

    async def platform_requests(
        self, platform: Platform, municipalities: Sequence[Municipality], total: int
    ) -> list[Request]:
        keys = await api_keys(platform, municipalities, "notices:write")
        return [
            Request(method="POST", path="/notices/", host=host_of(m), headers={"x-api-key": key}, body=BODY)
            for m, key in zip(municipalities, keys, strict=True)
        ]

    async def reference_requests(self, engine: AsyncEngine, total: int) -> list[Request]:
        return [Request(method="POST", path="/notices/", host=REFERENCE_HOST, body=BODY)]


SCENARIO = NoticesWrite()
