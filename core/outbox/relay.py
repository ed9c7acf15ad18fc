"""The relay: hands committed, due outbox messages to the broker and marks them relayed.

One runs in every app and worker process. Each pass takes a batch of due rows with ``FOR UPDATE SKIP LOCKED``
(PostgreSQL) or under SQLite's single writer lock, so relays running side by side never take the same row; sends
them; marks them relayed; commits. A broker that does not answer leaves the rest of the batch pending and the
relay backs off, doubling its wait up to :attr:`RelayConfig.max_backoff`: nothing is lost, and the messages
go out once the broker is back.

Delivery is at least once: a process that dies between the broker taking a message and the commit sends it again
after restarting, which is why handlers are idempotent (see :meth:`core.jobs.JobContext.once`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import dramatiq
import msgspec
import structlog
from sqlalchemy import or_, select, true

from core.db.base import utcnow
from core.exceptions import ImproperlyConfigured, NotFound
from core.outbox import _nudge
from core.outbox.models import OutboxMessage

if TYPE_CHECKING:
    from core.jobs import JobRunner
    from core.platform import Platform

log = structlog.get_logger(__name__)

UNKNOWN_JOB_RETRY = timedelta(minutes=5)


class RelayConfig(msgspec.Struct, kw_only=True, frozen=True):
    poll_interval: float = 1.0
    """Seconds between looks for due messages (``TSUNAGU_OUTBOX_POLL_INTERVAL``). A commit in this process
    wakes the relay at once; the poll catches other processes' commits and timers coming due."""
    batch_size: int = 200
    max_backoff: float = 30.0
    """Longest wait, in seconds, between attempts while the broker is unreachable."""

    def __post_init__(self) -> None:
        if not 0.01 <= self.poll_interval <= 60:
            raise ImproperlyConfigured(
                f"TSUNAGU_OUTBOX_POLL_INTERVAL must be between 0.01 and 60 seconds, got {self.poll_interval}"
            )
        if not 1 <= self.batch_size <= 10_000:
            raise ImproperlyConfigured(
                f"outbox batch_size must be between 1 and 10000, got {self.batch_size}"
            )
        if not self.poll_interval <= self.max_backoff <= 3600:
            raise ImproperlyConfigured(
                f"outbox max_backoff must be between poll_interval and 3600 seconds, got {self.max_backoff}"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RelayConfig:
        """:raises ImproperlyConfigured: naming the variable that is malformed."""
        environ = os.environ if environ is None else environ
        raw = environ.get("TSUNAGU_OUTBOX_POLL_INTERVAL")
        if raw is None:
            return cls()
        try:
            interval = float(raw)
        except ValueError:
            raise ImproperlyConfigured(
                f"TSUNAGU_OUTBOX_POLL_INTERVAL must be a number, got {raw!r}"
            ) from None
        return cls(poll_interval=interval, max_backoff=max(30.0, interval))


class BrokerUnavailable(Exception):
    """The broker refused or dropped a message; what was not sent stays pending."""


class Relay:
    """Moves due outbox messages to ``runner``'s broker, in a task on the event loop that starts it."""

    def __init__(self, platform: Platform, runner: JobRunner, config: RelayConfig | None = None) -> None:
        self.platform = platform
        self.runner = runner
        self.config = config or RelayConfig.from_env()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tsunagu-relay")
        """Broker clients are blocking and keep one connection per thread: one thread keeps one connection."""
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._listener: int | None = None
        self.started_at = utcnow()
        self.acks_on_completion = runner.acks_on_completion
        """The embedded broker keeps messages in memory: they count as relayed only once their job has finished
        (the runner marks them), and one sent by a process that has since stopped is sent again."""

    async def relay_once(self) -> int:
        """Send one batch of due messages. Returns how many were relayed.

        :raises BrokerUnavailable: after marking the ones the broker took before it failed.
        """
        now = utcnow()
        failure: BaseException | None = None
        sent = 0
        async with self.platform.sessions.platform() as session:
            rows = (
                await session.scalars(
                    select(OutboxMessage)
                    .where(OutboxMessage.relayed_at.is_(None), OutboxMessage.not_before <= now)
                    .where(self._not_in_flight())
                    .order_by(OutboxMessage.not_before)
                    .limit(self.config.batch_size)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            messages: list[tuple[OutboxMessage, dramatiq.Message[Any]]] = []
            for row in rows:
                try:
                    message = self.runner.message_for(
                        row.municipality_id, row.job, row.kwargs, row.key, message_id=str(row.id)
                    )
                except NotFound as exc:  # a plugin not loaded in this process: try later, keep it
                    row.attempts += 1
                    row.last_error = str(exc)[:500]
                    row.not_before = now + UNKNOWN_JOB_RETRY
                    log.error(
                        "outbox.unknown_job", job=row.job, municipality=row.municipality_id, key=row.key
                    )
                    continue
                messages.append((row, message))
            if messages:
                loop = asyncio.get_running_loop()
                sent, failure = await loop.run_in_executor(
                    self._executor, self._send, [m for _, m in messages]
                )
                sent_at = utcnow()
                for row, _ in messages[:sent]:
                    row.sent_at = sent_at
                    if not self.acks_on_completion:
                        row.relayed_at = sent_at
        if failure is not None:
            raise BrokerUnavailable(str(failure) or type(failure).__name__) from failure
        return sent

    def _not_in_flight(self) -> Any:
        if not self.acks_on_completion:
            return true()
        return or_(OutboxMessage.sent_at.is_(None), OutboxMessage.sent_at < self.started_at)

    def _send(self, messages: list[dramatiq.Message[Any]]) -> tuple[int, BaseException | None]:
        for index, message in enumerate(messages):
            try:
                self.runner.broker.enqueue(message)
            except Exception as exc:  # any client error: the broker did not take it
                return index, exc
        return len(messages), None

    def nudge(self) -> None:
        """Wake the relay now (from any thread)."""
        wake, task = self._wake, self._task
        if wake is not None and task is not None and not task.done():
            with contextlib.suppress(RuntimeError):  # the loop is closing
                task.get_loop().call_soon_threadsafe(wake.set)

    def start(self) -> None:
        """Run in the background on the current event loop until :meth:`stop`."""
        if self._task is not None:
            return
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._run_forever(), name="tsunagu-outbox-relay")
        self._listener = _nudge.add_listener(self.nudge)

    async def stop(self) -> None:
        if self._listener is not None:
            _nudge.remove_listener(self._listener)
            self._listener = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._executor.shutdown(wait=True)

    async def _run_forever(self) -> None:
        assert self._wake is not None
        backoff = 0.0
        while True:
            self._wake.clear()
            try:
                sent = await self.relay_once()
            except BrokerUnavailable as exc:
                backoff = min(self.config.max_backoff, backoff * 2 or self.config.poll_interval)
                log.warning("outbox.broker_unavailable", error=str(exc)[:200], retry_in=backoff)
                await asyncio.sleep(backoff)
                continue
            except Exception:  # the database may be away; keep trying
                backoff = min(self.config.max_backoff, backoff * 2 or self.config.poll_interval)
                log.warning("outbox.relay_failed", exc_info=True, retry_in=backoff)
                await asyncio.sleep(backoff)
                continue
            if backoff:
                log.info("outbox.broker_back")
            backoff = 0.0
            if sent >= self.config.batch_size:
                continue  # more may be waiting
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.config.poll_interval)
