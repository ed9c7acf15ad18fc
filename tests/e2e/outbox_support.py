"""What the end-to-end job tests share: a Redis server of their own, the probe plugin installed for child
processes, a prepared PostgreSQL database, worker processes, and reading back what the jobs did."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from sqlalchemy import select

from core.audit import AuditEvent
from core.outbox import OutboxMessage
from core.platform import create_platform
from core.tenancy import service
from core.tenancy.manifest import load_manifests
from tests.conftest import MANIFESTS, TEST_SECRET_KEY, migrated_platform_sync
from tests.conftest import test_settings as settings_for
from tests.outbox_probe import plugin as probe_plugin
from tests.plugin_helpers import write_distribution
from tests.processes import TSUNAGU, free_port, tsunagu_env

WAIT = 25.0
"""Seconds any awaited outcome may take before the test fails."""


def wait_for(what: str, condition: Callable[[], bool], timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.1)


class RedisServer:
    """A ``redis-server`` on a spare port that the test starts, kills and starts again. Every write is fsynced
    to its append-only file, as a deployment that must not lose queued jobs would run it."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.directory),
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for("redis-server answers", self._answers, timeout=10)

    def _answers(self) -> bool:
        import redis

        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return False
        finally:
            client.close()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None


def probe_environment(tmp_path: Path, database_url: str, broker_url: str, **variables: str) -> dict[str, str]:
    """A child's environment with the probe plugin installed (entry point) and quick relays."""
    site = tmp_path / "site"
    write_distribution(site, {"probe": "tests.outbox_probe:plugin"}, {})
    defaults = {
        "PYTHONPATH": str(site),
        "TSUNAGU_BROKER_URL": broker_url,
        "TSUNAGU_SECRET_KEY": TEST_SECRET_KEY,
        "TSUNAGU_OUTBOX_POLL_INTERVAL": "0.2",
        "TSUNAGU_LOG_LEVEL": "warning",
        "dramatiq_restart_delay": "300",  # ms before a worker reconnects to a broker that went away (default 3 s)
    }
    return tsunagu_env(database_url, **{**defaults, **variables})


def prepare_database(database_url: str, probe_in: tuple[str, ...] = ("miki",)) -> None:
    """Migrate, apply the eight manifests and enable the probe plugin where asked (in this process: quicker than
    three CLI processes, and the same services the CLI calls)."""
    platform = migrated_platform_sync(database_url)
    asyncio.run(platform.close())

    async def apply() -> None:
        platform = create_platform(settings_for(database_url), extra_plugins=[probe_plugin])
        try:
            await platform.refresh(force=True)
            await service.apply_manifests(platform, load_manifests(MANIFESTS), [str(p) for p in MANIFESTS])
            for slug in probe_in:
                await service.set_plugin_enabled(platform, slug, "probe", True)
        finally:
            await platform.close()

    asyncio.run(apply())


class Worker:
    """A ``tsunagu worker`` process; its output goes to ``log``."""

    def __init__(self, env: Mapping[str, str], log: Path, threads: int = 2) -> None:
        self.log = log
        with log.open("wb") as sink:
            self.process = subprocess.Popen(
                [str(TSUNAGU), "worker", "--threads", str(threads)],
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_for("the worker starts consuming", lambda: self._started(), timeout=30)

    def _started(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"worker exited with {self.process.returncode}:\n{self.output()[-3000:]}")
        return "worker consuming" in self.output()

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def kill(self) -> None:
        """SIGKILL: no chance to finish, ack or clean up."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self, timeout: float = 15) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()


def audit_targets(database_url: str, action: str) -> dict[str, list[str]]:
    """The target ids of every audit event ``action``, per municipality slug (duplicates kept)."""

    async def read() -> dict[str, list[str]]:
        platform = create_platform(settings_for(database_url), use_entry_points=False)
        try:
            await platform.refresh(force=True)
            async with platform.sessions.platform() as session:
                rows = await session.execute(
                    select(AuditEvent.municipality_id, AuditEvent.target_id).where(
                        AuditEvent.action == action
                    )
                )
                found: dict[str, list[str]] = {}
                for municipality_id, target in rows:
                    found.setdefault(platform.snapshot.by_id[municipality_id].slug, []).append(target)
                return found
        finally:
            await platform.close()

    return asyncio.run(read())


def pending_keys(database_url: str) -> set[str]:
    async def read() -> set[str]:
        platform = create_platform(settings_for(database_url), use_entry_points=False)
        try:
            async with platform.sessions.platform() as session:
                return set(
                    await session.scalars(select(OutboxMessage.key).where(OutboxMessage.relayed_at.is_(None)))
                )
        finally:
            await platform.close()

    return asyncio.run(read())
