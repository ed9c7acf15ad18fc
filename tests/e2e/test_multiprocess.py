"""Several app processes on one database: a plugin switched off from the CLI disappears from all of them.

Enablement lives in the database and every process polls the platform revision, so nothing needs a restart:
on PostgreSQL and on an SQLite file, two ``tsunagu serve`` processes must answer 404 for a disabled plugin's
routes within one second of ``tsunagu plugin disable`` returning, and 200 again within a second of ``enable``.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.conftest import MANIFESTS, PostgresDatabases, enabled_in_manifests
from tests.processes import Server, run_tsunagu, serving, tsunagu_env

pytestmark = pytest.mark.slow

PROPAGATION_LIMIT = 1.0
"""Seconds within which every process must follow a change made by another one."""
POLL_EVERY = 0.05


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def shared_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database, migrated and with the eight manifests applied, through the CLI."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'shared.sqlite3'}"
    else:
        databases: PostgresDatabases = request.getfixturevalue("postgres_databases")
        url = databases.create()
    env = tsunagu_env(url)
    for args in (["db", "upgrade"], ["municipality", "apply", *map(str, MANIFESTS)]):
        done = run_tsunagu(*args, env=env)
        assert done.returncode == 0, done.stderr
    return url


def statuses(servers: list[Server], path: str) -> list[int]:
    return [server.client.get(path).status_code for server in servers]


def seconds_until(servers: list[Server], path: str, status: int, limit: float) -> float:
    """Poll every server until all answer ``status``; the time it took (fails once ``limit`` is passed)."""
    started = time.monotonic()
    while True:
        seen = statuses(servers, path)
        elapsed = time.monotonic() - started
        if all(code == status for code in seen):
            return elapsed
        assert elapsed < limit, f"after {elapsed:.2f} s the servers answer {seen} on {path}, not {status}"
        time.sleep(POLL_EVERY)


ENABLED = enabled_in_manifests()


def test_a_switch_made_by_the_cli_reaches_every_server_within_a_second(
    shared_database: str, tmp_path: Path
) -> None:
    env = tsunagu_env(shared_database, TSUNAGU_ENV="development", TSUNAGU_LOG_LEVEL="warning")
    with serving(2, ["serve"], env, tmp_path) as servers:
        for server in servers:
            front = server.client.get("/m/sanuki/").json()
            assert sorted(s["name"] for s in front["services"]) == ENABLED["sanuki"]
            miki = server.client.get("/m/miki/").json()
            assert sorted(s["name"] for s in miki["services"]) == ENABLED["miki"]
        assert statuses(servers, "/m/miki/notices/") == [200, 200]

        done = run_tsunagu("plugin", "disable", "notices", "--municipality", "miki", env=env)
        assert (done.returncode, done.stdout) == (0, "miki: disabled notices\n"), done.stderr

        assert seconds_until(servers, "/m/miki/notices/", 404, PROPAGATION_LIMIT) < PROPAGATION_LIMIT
        assert statuses(servers, "/m/sanuki/notices/") == [200, 200]  # only miki's switch moved
        for server in servers:
            services = server.client.get("/m/miki/").json()["services"]
            assert sorted(s["name"] for s in services) == [n for n in ENABLED["miki"] if n != "notices"]
            problem = server.client.get("/m/miki/notices/")
            assert problem.headers["content-type"].startswith("application/problem+json")

        done = run_tsunagu("plugin", "enable", "notices", "--municipality", "miki", env=env)
        assert (done.returncode, done.stdout) == (0, "miki: enabled notices\n"), done.stderr

        assert seconds_until(servers, "/m/miki/notices/", 200, PROPAGATION_LIMIT) < PROPAGATION_LIMIT
        for server in servers:
            assert server.process.poll() is None, server.output()
