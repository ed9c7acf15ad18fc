"""What every app and worker process runs for jobs: the outbox relay, the periodic scheduler, maybe a worker."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from core.jobs.periodic import DEFAULT_TICK, PeriodicScheduler
from core.outbox.relay import Relay, RelayConfig

if TYPE_CHECKING:
    from core.jobs._runner import JobRunner
    from core.platform import Platform


class JobServices:
    """Start and stop the relay, the scheduler and (``consume=True``) the runner's worker threads together."""

    def __init__(
        self,
        platform: Platform,
        runner: JobRunner,
        *,
        relay_config: RelayConfig | None = None,
        periodic_tick: float = DEFAULT_TICK,
    ) -> None:
        self.runner = runner
        self.relay = Relay(platform, runner, relay_config)
        self.scheduler = PeriodicScheduler(platform, tick=periodic_tick)

    def start(self, *, consume: bool, threads: int = 2) -> None:
        """Start on the running event loop; with ``consume``, run jobs in this process too.

        With the embedded broker and no consuming here, nothing starts: messages stay in the outbox (an
        in-memory broker nobody reads would only hold them).
        """
        if self.runner.acks_on_completion and not consume:
            return
        if consume:
            self.runner.start_worker(threads)
        self.relay.start()
        self.scheduler.start()

    async def stop(self) -> None:
        """Stop scheduling and relaying, then the worker threads (a job in progress finishes first)."""
        await self.scheduler.stop()
        await self.relay.stop()
        await asyncio.to_thread(self.runner.stop)
