"""Background jobs on dramatiq, always bound to the municipality they were queued for.

Plugins do not create dramatiq actors themselves (an actor binds to whatever broker is global when it is
decorated). They mark plain async functions with :func:`job` and return them from ``register_actors``; the core
turns each into an actor named ``<plugin>.<function>`` on the broker chosen by ``TSUNAGU_BROKER_URL``:

- ``redis://…`` or ``amqp://…`` for a shared deployment (``tsunagu worker`` processes consume),
- ``embedded://`` (default): an in-memory broker whose worker threads run inside the serving process.

A job function receives a :class:`JobContext` (platform, municipality, a way to open a tenant session) and the
keyword arguments it was queued with. It runs only while its plugin is still enabled for that municipality.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

import dramatiq
import msgspec
import structlog
from dramatiq.brokers.stub import StubBroker

from core.exceptions import ImproperlyConfigured, NotFound
from core.settings import EMBEDDED_BROKER, Settings, redact_url

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from core.platform import Platform
    from core.tenancy.registry import Municipality

log = structlog.get_logger(__name__)

JobFunction = Callable[..., Awaitable[Any]]


class JobOptions(msgspec.Struct, kw_only=True, frozen=True):
    queue: str = "default"
    max_retries: int = 5
    time_limit_ms: int = 10 * 60 * 1000


def job(
    *, queue: str = "default", max_retries: int = 5, time_limit_ms: int = 600_000
) -> Callable[[JobFunction], JobFunction]:
    """Mark an ``async def fn(ctx: JobContext, **kwargs)`` as a job a plugin can return from ``register_actors``."""

    def mark(fn: JobFunction) -> JobFunction:
        fn.__tsunagu_job__ = JobOptions(queue=queue, max_retries=max_retries, time_limit_ms=time_limit_ms)  # type: ignore[attr-defined]
        return fn

    return mark


class JobContext:
    """What a running job is given: its municipality, and sessions bound to it."""

    def __init__(self, platform: Platform, municipality: Municipality, plugin: str) -> None:
        self.platform = platform
        self.municipality = municipality
        self.plugin = plugin

    def session(self) -> AbstractAsyncContextManager[AsyncSession]:
        """A database session bound to the job's municipality."""
        return self.platform.sessions.tenant(self.municipality.id)

    @property
    def settings(self) -> Any:
        return self.platform.plugin_settings(self.municipality, self.plugin)


def create_broker(settings: Settings) -> dramatiq.Broker:
    """The broker ``TSUNAGU_BROKER_URL`` names. Connections are made lazily, on first use."""
    url = settings.broker_url
    if url.startswith(EMBEDDED_BROKER):
        broker: dramatiq.Broker = StubBroker()
    elif url.startswith(("redis://", "rediss://")):
        from dramatiq.brokers.redis import RedisBroker

        broker = RedisBroker(url=url)
    elif url.startswith(("amqp://", "amqps://")):
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        broker = RabbitmqBroker(url=url)
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
    """The broker and the actors of every loaded plugin, for one process.

    Actors run in dramatiq's worker threads, each of which needs an event loop and a database engine of its own
    (asyncpg connections belong to one loop), so the runner owns a second :class:`Platform` for job execution.
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
        self._declare_actors()

    def _declare_actors(self) -> None:
        """Turn every plugin's ``@job`` functions into actors; a plugin's mistake leaves out only that plugin's job."""
        for impl in self.platform.plugins.pm.hook.register_actors.get_hookimpls():
            plugin_name = impl.plugin_name
            try:
                functions = list(impl.function() or [])
            except Exception:
                log.exception("plugin.hook_failed", plugin=plugin_name, hook="register_actors")
                continue
            for fn in functions:
                options: JobOptions | None = getattr(fn, "__tsunagu_job__", None)
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
                    options={"max_retries": options.max_retries, "time_limit": options.time_limit_ms},
                )

    def enqueue(self, municipality: Municipality, name: str, **kwargs: Any) -> dramatiq.Message[Any]:
        """Queue job ``<plugin>.<function>`` for a municipality. Arguments must be JSON-serialisable.

        :raises NotFound: if no such job is registered.
        """
        actor = self.actors.get(name)
        if actor is None:
            raise NotFound(f"no job named {name!r}")
        return actor.send(municipality.id, kwargs)

    def _runner_for(self, plugin_name: str, fn: JobFunction) -> Callable[[int, dict[str, Any]], None]:
        def run(municipality_id: int, kwargs: dict[str, Any]) -> None:
            future = asyncio.run_coroutine_threadsafe(
                self._run(plugin_name, fn, municipality_id, kwargs), self._event_loop()
            )
            future.result()

        run.__name__ = fn.__name__
        return run

    async def _run(
        self, plugin_name: str, fn: JobFunction, municipality_id: int, kwargs: dict[str, Any]
    ) -> None:
        platform = await self._execution_platform()
        await platform.refresh()
        municipality = platform.snapshot.by_id.get(municipality_id)
        if municipality is None or not platform.is_enabled(municipality, plugin_name):
            log.warning(
                "job.skipped",
                job=f"{plugin_name}.{fn.__name__}",
                municipality=municipality_id,
                reason="municipality unknown or plugin not enabled there",
            )
            return
        with structlog.contextvars.bound_contextvars(
            municipality=municipality.slug, job=f"{plugin_name}.{fn.__name__}"
        ):
            await fn(JobContext(platform, municipality, plugin_name), **kwargs)

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
                asyncio.run_coroutine_threadsafe(self._job_platform.engine.dispose(), loop).result(timeout=10)
            loop.call_soon_threadsafe(loop.stop)
            if self._loop_thread is not None:
                self._loop_thread.join(timeout=10)
                self._loop_thread = None
            loop.close()  # else its selector and self-pipe sockets leak (ResourceWarning)
            self._loop = None
        self.broker.close()
