"""Nothing is lost: requests that arrive while the broker is down are each handled once it is back, and a job
whose worker is killed mid-job runs again without doing its effect twice.

Real processes on PostgreSQL: ``tsunagu serve`` with a test plugin whose route queues a job through the outbox,
``tsunagu worker`` consuming; the effect is an audit event written at most once per message key
(``ctx.once``).
"""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.outbox import send_later
from core.platform import create_platform
from tests.conftest import PostgresDatabases
from tests.conftest import test_settings as settings_for
from tests.e2e.outbox_support import (
    RedisServer,
    Worker,
    audit_targets,
    pending_keys,
    prepare_database,
    probe_environment,
    wait_for,
)
from tests.outbox_probe import runs_of
from tests.processes import serving

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

RABBITMQ = "amqp://guest:guest@127.0.0.1:5672/"


def test_requests_made_while_the_broker_is_down_are_each_handled_once_it_is_back(
    postgres_databases: PostgresDatabases, tmp_path: Path
) -> None:
    database_url = postgres_databases.create()
    broker = RedisServer(tmp_path / "redis")
    broker.start()
    try:
        env = probe_environment(tmp_path, database_url, broker.url)
        prepare_database(database_url)
        worker = Worker(env, tmp_path / "worker.log")
        try:
            with serving(1, ["serve"], env, tmp_path) as [server]:
                sent: list[str] = []

                def post(phase: str, count: int) -> None:
                    for index in range(count):
                        marker = f"{phase}-{index}"
                        response = server.client.post("/m/miki/probe/items", json={"marker": marker})
                        assert response.status_code == 202, response.text
                        sent.append(marker)

                post("before", 10)
                broker.kill()
                post("during", 10)
                wait_for(
                    "the relay found the broker away", lambda: "outbox.broker_unavailable" in server.output()
                )
                # The broker really is away: what arrived meanwhile waits in the outbox.
                assert {f"during-{i}" for i in range(10)} <= pending_keys(database_url)
                broker.start()
                post("after", 10)

                def all_handled() -> bool:
                    return set(audit_targets(database_url, "probe.effect").get("miki", [])) >= set(sent)

                wait_for("every request's job has run", all_handled)
                assert sorted(audit_targets(database_url, "probe.effect")["miki"]) == sorted(sent)
                assert pending_keys(database_url) == set()
        finally:
            worker.stop()
    finally:
        broker.kill()


@pytest.fixture
def rabbitmq_vhost() -> Iterator[str]:
    """A virtual host of our own, so no other consumer of the shared server can take our messages."""
    name = f"tsunagu_test_{uuid.uuid4().hex[:8]}"
    for args in (["add_vhost", name], ["set_permissions", "-p", name, "guest", ".*", ".*", ".*"]):
        subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)
    try:
        yield RABBITMQ + name
    finally:
        subprocess.run(
            ["rabbitmqctl", "-q", "delete_vhost", name], check=False, capture_output=True, timeout=60
        )


def test_a_worker_killed_mid_job_leaves_the_job_to_run_again_and_its_effect_happens_once(
    postgres_databases: PostgresDatabases, tmp_path: Path, rabbitmq_vhost: str
) -> None:
    database_url = postgres_databases.create()
    runs = tmp_path / "runs.txt"
    env = probe_environment(tmp_path, database_url, rabbitmq_vhost, TSUNAGU_PROBE_RUNS=str(runs))
    prepare_database(database_url)

    async def queue() -> None:
        platform = create_platform(settings_for(database_url), use_entry_points=False)
        try:
            await platform.refresh(force=True)
            async with platform.sessions.tenant(platform.municipality("miki").id) as session:
                await send_later(session, "probe.effect", key="letter-1", marker="letter-1", hold=60)
        finally:
            await platform.close()

    first = Worker(env, tmp_path / "first.log")
    try:
        asyncio.run(queue())
        # The first run has done its effect and committed, and is still holding the message (not acked).
        wait_for("the first run did its effect", lambda: audit_targets(database_url, "probe.effect") != {})
        assert runs_of(runs, "letter-1") == 1
    finally:
        first.kill()
    second = Worker(env, tmp_path / "second.log")
    try:
        wait_for("the job ran again and finished", lambda: runs_of(runs, "letter-1 done") == 1)
    finally:
        second.stop()
    assert runs_of(runs, "letter-1") == 2
    assert audit_targets(database_url, "probe.effect") == {"miki": ["letter-1"]}
