"""``tsunagu outbox status``: what waits to be relayed, per municipality."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import update

from core.db import utcnow
from core.outbox import OutboxMessage, send_later
from core.platform import Platform
from tests.cli_runner import Run, cli_runner
from tests.conftest import MANIFESTS
from tests.integration.test_audit_cli import on_platform
from tests.integration.test_cli import assert_one_line_error


@pytest.fixture
def cli(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[Run]:
    """``tsunagu`` in-process on a database with the eight municipalities applied."""
    monkeypatch.setenv("TSUNAGU_DATABASE_URL", database_url)
    for variable in ("TSUNAGU_ENV", "TSUNAGU_LOG_LEVEL", "TSUNAGU_BROKER_URL", "TSUNAGU_SECRET_KEY"):
        monkeypatch.delenv(variable, raising=False)
    with cli_runner(capsys) as run:
        assert run("municipality", "apply", *MANIFESTS).code == 0
        yield run


async def seed(platform: Platform) -> None:
    miki = platform.municipality("miki")
    async with platform.sessions.tenant(miki.id) as session:
        for key in ("a", "b", "c"):
            await send_later(session, "notices.remind", key=key, not_before=utcnow() - timedelta(minutes=5))
        await send_later(session, "notices.remind", key="timer", not_before=utcnow() + timedelta(hours=1))
    async with platform.sessions.tenant(miki.id) as session:
        await session.execute(
            update(OutboxMessage).where(OutboxMessage.key == "a").values(relayed_at=utcnow())
        )
        await session.execute(update(OutboxMessage).where(OutboxMessage.key == "b").values(attempts=2))


def test_status_counts_what_waits_and_for_how_long(cli: Run, database_url: str) -> None:
    on_platform(database_url, seed)
    lines = {line["municipality"]: line for line in cli("outbox", "status", "--json").json()}
    assert len(lines) == 8
    miki = lines.pop("miki")
    assert {k: miki[k] for k in ("pending", "due", "failing", "relayed")} == {
        "pending": 3,
        "due": 2,
        "failing": 1,
        "relayed": 1,
    }
    assert miki["oldest_due_seconds"] >= 300
    assert all(
        line["pending"] == line["relayed"] == 0 and line["oldest_due_seconds"] is None
        for line in lines.values()
    )
    table = cli("outbox", "status", "-m", "takamatsu")
    assert table.code == 0 and "takamatsu" in table.out and "miki" not in table.out
    assert_one_line_error(cli("outbox", "status", "-m", "nowhere"), "unknown municipality 'nowhere'")
