"""Two ``tsunagu worker`` processes on one PostgreSQL database: a periodic job fires once per period in each
municipality where its plugin is enabled, never twice, never where it is off."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import PostgresDatabases
from tests.e2e.outbox_support import (
    RedisServer,
    Worker,
    audit_targets,
    prepare_database,
    probe_environment,
    wait_for,
)

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

PERIODS = 3


def queued_by(worker: Worker) -> list[tuple[str, str, str]]:
    """(municipality, job, period start) of every period this worker's scheduler claimed and queued.

    Other plugins enabled in the manifests have periodic jobs of their own (daily reminders at the same hour), so a
    period is told apart by its job too."""
    claimed = []
    for line in worker.output().splitlines():
        if '"periodic.queued"' in line:
            entry = json.loads(line)
            claimed.append((entry["municipality"], entry["job"], entry["period_start"]))
    return claimed


def test_two_workers_fire_a_periodic_job_once_per_period(
    postgres_databases: PostgresDatabases, tmp_path: Path
) -> None:
    database_url = postgres_databases.create()
    broker = RedisServer(tmp_path / "redis")
    broker.start()
    env = probe_environment(
        tmp_path,
        database_url,
        broker.url,
        TSUNAGU_PROBE_PERIOD="1",
        TSUNAGU_LOG_LEVEL="debug",
        TSUNAGU_LOG_FORMAT="json",
    )
    prepare_database(database_url, probe_in=("miki", "takamatsu"))
    workers = []
    try:
        workers = [Worker(env, tmp_path / f"worker-{i}.log") for i in range(2)]

        def enough_periods() -> bool:
            ticks = audit_targets(database_url, "probe.tick")
            return all(len(ticks.get(slug, [])) >= PERIODS for slug in ("miki", "takamatsu"))

        wait_for(f"{PERIODS} periods in each municipality", enough_periods)
    finally:
        for worker in workers:
            worker.stop()
        broker.kill()

    ticks = audit_targets(database_url, "probe.tick")
    assert set(ticks) == {"miki", "takamatsu"}  # the plugin is off everywhere else
    for slug, keys in ticks.items():
        assert len(keys) == len(set(keys)), f"a period ran twice in {slug}: {keys}"
        assert all(key.startswith("periodic:probe.tick:") for key in keys)
    # Both schedulers tick every second and race for each period; each period was claimed by exactly one.
    counted = Counter(claim for worker in workers for claim in queued_by(worker))
    assert counted and max(counted.values()) == 1, counted
