"""Marking job functions, and what a running job is given."""

from __future__ import annotations

import contextvars
import hashlib
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

import msgspec
from sqlalchemy.dialects import postgresql, sqlite

from core.db.base import utcnow
from core.exceptions import ImproperlyConfigured
from core.jobs.models import JobRun

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from core.platform import Platform
    from core.tenancy.registry import Municipality

JobFunction = Callable[..., Awaitable[Any]]

_current: contextvars.ContextVar[JobContext] = contextvars.ContextVar("tsunagu_job")


class JobOptions(msgspec.Struct, kw_only=True, frozen=True):
    queue: str = "default"
    max_retries: int = 5
    """Retries after a failure, with exponential backoff between ``min_backoff_ms`` and ``max_backoff_ms``."""
    time_limit_ms: int = 10 * 60 * 1000
    min_backoff_ms: int = 15_000
    max_backoff_ms: int = 60 * 60 * 1000

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ImproperlyConfigured(f"job max_retries must be 0 or more, got {self.max_retries}")
        for name in ("time_limit_ms", "min_backoff_ms", "max_backoff_ms"):
            if getattr(self, name) < 1:
                raise ImproperlyConfigured(f"job {name} must be at least 1, got {getattr(self, name)}")
        if self.min_backoff_ms > self.max_backoff_ms:
            raise ImproperlyConfigured("job min_backoff_ms must not exceed max_backoff_ms")


def job(
    *,
    queue: str = "default",
    max_retries: int = 5,
    time_limit_ms: int = 600_000,
    min_backoff_ms: int = 15_000,
    max_backoff_ms: int = 3_600_000,
) -> Callable[[JobFunction], JobFunction]:
    """Mark an ``async def fn(ctx: JobContext, **kwargs)`` as a job a plugin can return from ``register_actors``.

    :raises ImproperlyConfigured: naming the option that is out of range.
    """
    options = JobOptions(
        queue=queue,
        max_retries=max_retries,
        time_limit_ms=time_limit_ms,
        min_backoff_ms=min_backoff_ms,
        max_backoff_ms=max_backoff_ms,
    )

    def mark(fn: JobFunction) -> JobFunction:
        fn.__tsunagu_job__ = options  # type: ignore[attr-defined]
        return fn

    return mark


def job_options(fn: Any) -> JobOptions | None:
    """The options of a function marked with :func:`job`, or ``None`` if it is not marked."""
    return getattr(fn, "__tsunagu_job__", None)


class JobContext:
    """What a running job is given: its municipality, sessions bound to it, and the message's key."""

    def __init__(
        self,
        platform: Platform,
        municipality: Municipality,
        plugin: str,
        *,
        job: str = "",
        message_key: str | None = None,
    ) -> None:
        self.platform = platform
        self.municipality = municipality
        self.plugin = plugin
        self.job = job
        """The job's name, ``<plugin>.<function>``."""
        self.message_key = message_key
        """The outbox message's key (its id when the sender gave none): the same on every delivery."""

    def session(self) -> AbstractAsyncContextManager[AsyncSession]:
        """A database session bound to the job's municipality."""
        return self.platform.sessions.tenant(self.municipality.id)

    @property
    def settings(self) -> Any:
        return self.platform.plugin_settings(self.municipality, self.plugin)

    async def once(self, session: AsyncSession, *, step: str = "") -> bool:
        """Record, in ``session``'s transaction, that this message's effect is done; ``False`` if it was already.

        Do the effect in the same transaction, after this returns ``True``: a redelivered message (a worker
        killed mid-job, a retry after the commit) then finds the record and does nothing. ``step`` names one of
        several effects of one job, each done once.

        :raises TypeError: if the job has no message key (it was not queued through the outbox).
        """
        if self.message_key is None:
            raise TypeError(f"{self.job} has no message key: queue it with core.outbox.send_later")
        key = f"{self.message_key}:{step}" if step else self.message_key
        insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
        result = await session.execute(
            insert(JobRun)
            .values(municipality_id=self.municipality.id, job=self.job, key=_fit(key), done_at=utcnow())
            .on_conflict_do_nothing(index_elements=["municipality_id", "job", "key"])
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]


def _fit(key: str) -> str:
    """Keys longer than the column keep their start and end in a digest, so two long keys never meet."""
    if len(key) <= 200:
        return key
    return f"{key[:135]}:{hashlib.sha256(key.encode()).hexdigest()}"


def current_context() -> JobContext:
    """The context of the job running in this task, for code a job calls (an ``on_event`` implementation).

    :raises LookupError: outside a job.
    """
    return _current.get()


def set_current(ctx: JobContext) -> contextvars.Token[JobContext]:
    return _current.set(ctx)


def reset_current(token: contextvars.Token[JobContext]) -> None:
    _current.reset(token)
