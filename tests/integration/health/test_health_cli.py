"""``tsunagu health``: the open data export and the statistics, in-process on SQLite and PostgreSQL; bad input is
one line on stderr with exit code 2."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from core.platform import Platform
from plugins.health.schemas import EventCreate
from plugins.health.services import context_for, events
from tests.cli_runner import Run, cli_runner
from tests.conftest import MANIFESTS
from tests.integration.health.helpers import STAFF, in_days
from tests.integration.test_audit_cli import on_platform
from tests.integration.test_cli import assert_one_line_error


@pytest.fixture
def run(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[Run]:
    monkeypatch.setenv("TSUNAGU_DATABASE_URL", database_url)
    for variable in ("TSUNAGU_ENV", "TSUNAGU_LOG_LEVEL", "TSUNAGU_BROKER_URL", "TSUNAGU_SECRET_KEY"):
        monkeypatch.delenv(variable, raising=False)
    with cli_runner(capsys) as runner:
        assert runner("municipality", "apply", *MANIFESTS).code == 0
        yield runner


async def _walk(platform: Platform) -> None:
    municipality = platform.municipality("miki")
    async with platform.sessions.tenant(municipality.id) as session:
        await events.create_event(
            session,
            context_for(platform, municipality),
            STAFF,
            EventCreate(
                title="健康ウォーク", venue="公園", starts_at=in_days(3), ends_at=in_days(3, 12), capacity=30
            ),
        )


def test_export_and_stats(run: Run, database_url: str) -> None:
    on_platform(database_url, _walk)
    exported = run("health", "export-events", "-m", "miki")
    assert exported.code == 0, exported.err
    assert exported.lines[0].startswith("全国地方公共団体コード,ID,地方公共団体名,イベント名")
    assert "健康ウォーク" in exported.lines[1] and ",30," in exported.lines[1]
    stats = run("health", "stats", "-m", "miki", "--first", "2026-04-01", "--last", "2027-03-31", "--json")
    assert stats.json()["cells"] == [] and stats.json()["min_cell"] == 10
    assert_one_line_error(
        run("health", "stats", "-m", "miki", "--first", "April", "--last", "2027-03-31"), "--first"
    )
    assert_one_line_error(run("health", "export-events", "-m", "ayagawa"), "health")
