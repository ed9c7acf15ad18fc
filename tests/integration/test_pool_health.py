"""Pooled PostgreSQL connections: a dead one is replaced before a request gets it, and one in steady use is
handed out without a ping (``core.db.engine._ping_when_idle``)."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_connection

from core.db import engine as engine_module
from core.platform import Platform
from tests.conftest import ADMIN_URL

pytestmark = pytest.mark.parametrize("backend", [pytest.param("postgres", marks=pytest.mark.postgres)])


async def _request_read(platform: Platform) -> int:
    """What a request does with the pool: a tenant session's transaction; returns the server process it used."""
    async with platform.sessions.tenant(platform.municipality("miki").id) as session:
        return int(await session.scalar(text("SELECT pg_backend_pid()")))


@pytest.fixture
def pings(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every ping the pool sends, as ``ok`` or ``failed``; ``fail_next`` makes the next one fail."""
    seen: list[str] = []
    original = AsyncAdapt_asyncpg_connection.ping

    def counting_ping(self: Any) -> None:
        if seen and seen[-1] == "fail_next":
            seen[-1] = "failed"
            raise ConnectionResetError("the network dropped this connection")
        original(self)
        seen.append("ok")

    monkeypatch.setattr(AsyncAdapt_asyncpg_connection, "ping", counting_ping)
    return seen


async def test_a_connection_the_server_closed_is_replaced_without_an_error(
    platform: Platform, pings: list[str]
) -> None:
    pid = await _request_read(platform)  # its connection now waits in the pool
    admin = await asyncpg.connect(ADMIN_URL)
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()
    await asyncio.sleep(0.3)  # the driver reads the server's goodbye
    replacement = await _request_read(platform)
    assert replacement != pid
    assert pings == []  # known dead without asking


async def test_a_connection_in_steady_use_is_not_pinged_and_an_idle_one_is(
    platform: Platform, pings: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pid = await _request_read(platform)
    for _ in range(3):
        assert await _request_read(platform) == pid
    assert pings == []
    later = engine_module._clock() + engine_module.PING_AFTER_IDLE_SECONDS + 1
    monkeypatch.setattr(engine_module, "_clock", lambda: later)
    assert await _request_read(platform) == pid
    assert pings == ["ok"]


async def test_a_connection_that_fails_its_ping_is_replaced(
    platform: Platform, pings: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pid = await _request_read(platform)
    later = engine_module._clock() + engine_module.PING_AFTER_IDLE_SECONDS + 1
    monkeypatch.setattr(engine_module, "_clock", lambda: later)
    pings.append("fail_next")
    assert await _request_read(platform) != pid
    assert pings == ["failed"]
