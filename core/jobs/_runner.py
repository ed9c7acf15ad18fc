"""The broker, and the actors every loaded plugin (and the core) declares, for one process."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import dramatiq
import structlog
from dramatiq.brokers.stub import StubBroker
from sqlalchemy import update

from core.db.base import utcnow
from core.exceptions import ImproperlyConfigured, NotFound
from core.jobs._context import (
    JobContext,
    JobFunction,
    job_options,
    reset_current,
    set_current,
)
from core.plugins.manager import CORE_PLUGIN_NAME
from core.settings import EMBEDDED_BROKER, Settings, redact_url

if TYPE_CHECKING:
    from core.platform import Platform
    from core.tenancy.registry import Municipality

log = structlog.get_logger(__name__)


def create_broker(settings: Settings) -> dramatiq.Broker:
    """The broker ``TSUNAGU_BROKER_URL`` names. Connections are made lazily, on first use.

    RabbitMQ publishes with delivery confirmation, so the relay marks a message relayed only once the broker
    has taken it.
    """
    url = settings.broker_url
    if url.startswith(EMBEDDED_BROKER):
        broker: dramatiq.Broker = StubBroker()
    elif url.startswith(("redis://", "rediss://")):
        from dramatiq.brokers.redis import RedisBroker

        # Bounded waits: a relay talking to an unreachable host gives up and retries later instead of hanging.
        broker = RedisBroker(url=url, socket_connect_timeout=5, socket_timeout=30)
    elif url.startswith(("amqp://", "amqps://")):
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        broker = RabbitmqBroker(url=url, confirm_delivery=True)
    else:  # Settings validates this already; kept for direct callers
        raise ImproperlyConfigured(f"TSUNAGU_BROKER_URL scheme not supported: {redact_url(url)}")
    return broker


def check_broker(settings: Settings, broker: dramatiq.Broker) -> None:
    """Raise if the broker does not answer (used by ``/readyz``)."""
    if isinstance(broker, StubBroker):
        return
    from dramatiq.brokers.redis import RedisBroker

    if isinstance(broker, RedisBroker):
        broker.client.ping()
        return
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(settings.broker_url))
    connection.close()


class JobRunner:
    """The broker and the actors of every loaded plugin and of the core, for one process.

    Actors run in dramatiq's worker threads, each of which needs an event loop and a database engine of its own
    (asyncpg connections belong to one loop), so the runner owns a second :class:`Platform` for job execution.
    A message carries ``(municipality_id, kwargs, message_key)``.
    """

    def __init__(self, platform: Platform, broker: dramatiq.Broker | None = None) -> None:
        self.platform = platform
        self.broker = broker or create_broker(platform.settings)
        self.actors: dict[str, dramatiq.Actor] = {}
        self._job_platform: Platform | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None
        self._loop_lock = threading.Lock()
        self._worker: dramatiq.Worker | None = None
        self.acks_on_completion = isinstance(self.broker, StubBroker)
        """In-memory broker: a message leaves the outbox only when its job is done (see ``_CompletionAcks``)."""
        if self.acks_on_completion:
            self.broker.add_middleware(_CompletionAcks(self))
        self._declare_actors()

    def _declare_actors(self) -> None:
        """Turn every ``@job`` function into an actor; a plugin's mistake leaves out only that plugin's job."""
        for impl in self.platform.plugins.pm.hook.register_actors.get_hookimpls():
            plugin_name = impl.plugin_name
            try:
                functions = list(impl.function() or [])
            except Exception:
                if plugin_name == CORE_PLUGIN_NAME:
                    raise
                log.exception("plugin.hook_failed", plugin=plugin_name, hook="register_actors")
                continue
            for fn in functions:
                options = job_options(fn)
                if options is None:
                    log.error(
                        "plugin.job_invalid",
                        plugin=plugin_name,
                        job=repr(fn),
                        reason="register_actors must return functions marked with @core.jobs.job",
                    )
                    continue
                name = f"{plugin_name}.{fn.__name__}"
                self.actors[name] = dramatiq.Actor(
                    self._runner_for(plugin_name, fn),
                    broker=self.broker,
                    actor_name=name,
                    queue_name=options.queue,
                    priority=0,
                    options={
                        "max_retries": options.max_retries,
                        "time_limit": options.time_limit_ms,
                        "min_backoff": options.min_backoff_ms,
                        "max_backoff": options.max_backoff_ms,
                    },
                )

    def message_for(
        self,
        municipality_id: int,
        name: str,
        kwargs: dict[str, Any],
        key: str,
        *,
        message_id: str | None = None,
    ) -> dramatiq.Message[Any]:
        """The broker message that runs job ``name`` for a municipality.

        :raises NotFound: if no such job is registered.
        """
        actor = self.actors.get(name)
        if actor is None:
            raise NotFound(f"no job named {name!r}")
        return dramatiq.Message(
            queue_name=actor.queue_name,
            actor_name=actor.actor_name,
            args=(municipality_id, kwargs, key),
            kwargs={},
            options={},
            message_id=message_id or str(uuid.uuid4()),
        )

    def enqueue(self, municipality: Municipality, name: str, **kwargs: Any) -> dramatiq.Message[Any]:
        """Queue job ``<plugin>.<function>`` straight to the broker, bypassing the outbox.

        Lost if the broker is down or the caller's transaction rolls back; use :func:`core.outbox.send_later`
        for anything that must not be lost. Arguments must be JSON-serialisable.

        :raises NotFound: if no such job is registered.
        """
        message_id = str(uuid.uuid4())
        message = self.message_for(municipality.id, name, kwargs, message_id, message_id=message_id)
        return self.broker.enqueue(message)

    def _runner_for(self, plugin_name: str, fn: JobFunction) -> Callable[..., None]:
        def run(municipality_id: int, kwargs: dict[str, Any], key: str | None = None) -> None:
            future = asyncio.run_coroutine_threadsafe(
                self._run(plugin_name, fn, municipality_id, kwargs, key), self._event_loop()
            )
            future.result()

        run.__name__ = fn.__name__
        return run

    async def _run(
        self,
        plugin_name: str,
        fn: JobFunction,
        municipality_id: int,
        kwargs: dict[str, Any],
        key: str | None,
    ) -> None:
        name = f"{plugin_name}.{fn.__name__}"
        platform = await self._execution_platform()
        await platform.refresh()
        municipality = platform.snapshot.by_id.get(municipality_id)
        core_job = plugin_name == CORE_PLUGIN_NAME  # the core's own jobs run wherever the municipality exists
        if municipality is None or not (core_job or platform.is_enabled(municipality, plugin_name)):
            log.warning(
                "job.skipped",
                job=name,
                municipality=municipality_id,
                reason="municipality unknown or plugin not enabled there",
            )
            return
        ctx = JobContext(platform, municipality, plugin_name, job=name, message_key=key)
        token = set_current(ctx)
        try:
            with structlog.contextvars.bound_contextvars(municipality=municipality.slug, job=name):
                await fn(ctx, **kwargs)
        finally:
            reset_current(token)

    def mark_finished(self, message: dramatiq.Message[Any]) -> None:
        """Mark an outbox message relayed once its job is done or has failed for good (embedded broker)."""
        municipality_id = message.args[0] if message.args else None
        if not isinstance(municipality_id, int):
            return
        future = asyncio.run_coroutine_threadsafe(
            self._mark_finished(municipality_id, message.message_id), self._event_loop()
        )
        future.result()

    async def _mark_finished(self, municipality_id: int, message_id: str) -> None:
        from core.outbox.models import OutboxMessage

        try:
            row_id = uuid.UUID(message_id)
        except ValueError:
            return
        platform = await self._execution_platform()
        async with platform.sessions.tenant(municipality_id) as session:
            await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == row_id, OutboxMessage.relayed_at.is_(None))
                .values(relayed_at=utcnow())
                .execution_options(synchronize_session=False)
            )

    def _event_loop(self) -> asyncio.AbstractEventLoop:
        with self._loop_lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                self._loop_thread = threading.Thread(
                    target=loop.run_forever, name="tsunagu-jobs-loop", daemon=True
                )
                self._loop_thread.start()
                self._loop = loop
            return self._loop

    async def _execution_platform(self) -> Platform:
        if self._job_platform is None:
            from core.db.engine import create_engine
            from core.db.session import SessionFactory
            from core.platform import Platform

            self._job_platform = Platform(
                self.platform.settings,
                SessionFactory(create_engine(self.platform.settings.database_url)),
                self.platform.plugins,
            )
            self._job_platform.jobs = self
        return self._job_platform

    def start_worker(self, threads: int = 2) -> dramatiq.Worker:
        """Consume in this process (embedded mode, or ``tsunagu worker``)."""
        self._worker = dramatiq.Worker(self.broker, worker_threads=threads)
        self._worker.start()
        return self._worker

    def stop(self) -> None:
        if self._worker is not None:
            self._worker.stop()
            self._worker = None
        if self._loop is not None:
            loop = self._loop
            if self._job_platform is not None:
                asyncio.run_coroutine_threadsafe(self._job_platform.sessions.dispose(), loop).result(
                    timeout=10
                )
            loop.call_soon_threadsafe(loop.stop)
            if self._loop_thread is not None:
                self._loop_thread.join(timeout=10)
                self._loop_thread = None
            loop.close()  # else its selector and self-pipe sockets leak (ResourceWarning)
            self._loop = None
        self.broker.close()


class _CompletionAcks(dramatiq.Middleware):
    """For the in-memory broker: tell the outbox when a message is finished, so an unfinished one survives a
    restart of the process that held it."""

    def __init__(self, runner: JobRunner) -> None:
        self.runner = runner

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: dramatiq.Message[Any],
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        if exception is None or message.failed:
            self._mark(message)

    def after_skip_message(self, broker: dramatiq.Broker, message: dramatiq.Message[Any]) -> None:
        self._mark(message)

    def _mark(self, message: dramatiq.Message[Any]) -> None:
        try:
            self.runner.mark_finished(message)
        except Exception:  # the job ran; at worst the message runs again after a restart
            log.warning("outbox.finish_not_recorded", message_id=message.message_id, exc_info=True)
