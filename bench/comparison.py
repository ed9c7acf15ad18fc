"""Running the load generator against two or more served sides, interleaved so drift hits all alike.

Each side gets the same number of requests, split over ``rounds`` runs; round 1 runs the sides in order, round
2 in reverse (A B, B A, ...), and each side's runs are summed. Only a side's first run has a warm-up.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Sequence

import msgspec

from bench.load import LoadResult, LoadSpec, Request
from bench.servers import Server
from bench.stats import LoadRun, Measured, combine
from core.settings import PROJECT_ROOT


class Side:
    """One served thing being measured, with its request templates and what it measured so far."""

    def __init__(
        self, name: str, server: Server, templates: list[Request], expect_status: int, warmup: int
    ) -> None:
        self.name = name
        self.server = server
        self.templates = templates
        self.expect_status = expect_status
        self.warmup = warmup
        """Unmeasured requests before its first run."""
        self.next_index = 0
        self.runs: list[LoadRun] = []
        self.server_cpu_seconds: float | None = 0.0

    def measured(self) -> Measured:
        return combine(self.runs, self.server_cpu_seconds)


def split(total: int, parts: int) -> list[int]:
    """``total`` as ``parts`` near-equal whole numbers (the first ones take the remainder).

    :raises ValueError: for fewer than one part or fewer requests than parts.
    """
    if parts < 1 or total < parts:
        raise ValueError(f"cannot split {total} requests into {parts} runs")
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def interleaved(sides: Sequence[Side], rounds: int) -> list[tuple[int, Side]]:
    """(round, side) in run order: forwards in even rounds, backwards in odd ones."""
    order = []
    for round_ in range(rounds):
        for side in sides if round_ % 2 == 0 else reversed(sides):
            order.append((round_, side))
    return order


def load_once(side: Side, count: int, warmup: int, concurrency: int, timeout: float) -> LoadResult:
    """One run of the load generator (a separate process) against ``side``.

    :raises RuntimeError: if the load generator fails, with its error output.
    """
    spec = LoadSpec(
        port=side.server.port,
        templates=side.templates,
        start=side.next_index,
        count=count,
        warmup=warmup,
        concurrency=concurrency,
        expect_status=side.expect_status,
        server_pid=side.server.pid,
        timeout_s=timeout,
    )
    done = subprocess.run(
        [sys.executable, "-m", "bench.load"],
        input=msgspec.json.encode(spec),
        capture_output=True,
        cwd=PROJECT_ROOT,
        timeout=timeout + 30,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"load generator failed on {side.name}:\n{done.stderr.decode(errors='replace')[-2000:]}"
        )
    side.next_index += warmup + count
    return msgspec.json.decode(done.stdout, type=LoadResult)


def compare(
    sides: Sequence[Side],
    *,
    requests: int,
    concurrency: int,
    rounds: int,
    timeout: float = 900,
    progress: Callable[[str], None] = lambda line: None,
) -> None:
    """Run every side; each collects its runs (see :meth:`Side.measured`)."""
    counts = split(requests, rounds)
    for round_, side in interleaved(sides, rounds):
        result = load_once(side, counts[round_], 0 if side.runs else side.warmup, concurrency, timeout)
        side.runs.append(result.run)
        if result.server_cpu_seconds is None or side.server_cpu_seconds is None:
            side.server_cpu_seconds = None
        else:
            side.server_cpu_seconds += result.server_cpu_seconds
        run = result.run
        progress(
            f"    {side.name}, run {round_ + 1}/{rounds}: {run.requests / run.seconds:,.0f} req/s"
            + (f", {run.errors} errors ({run.first_error[:200]})" if run.errors else "")
        )


def alone(side: Side, count: int, timeout: float = 900) -> Measured:
    """``count`` requests over one connection: the time a request takes when nothing queues before it."""
    result = load_once(side, count, 0, 1, timeout)
    return combine([result.run], result.server_cpu_seconds)
