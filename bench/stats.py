"""Figures from one measured load run: throughput and latency percentiles."""

from __future__ import annotations

import math
from collections.abc import Sequence

import msgspec


class LoadRun(msgspec.Struct, kw_only=True, frozen=True):
    """What the load generator reports for one measured run (warm-up excluded)."""

    requests: int
    concurrency: int
    seconds: float
    """Wall time from the first request sent to the last response read."""
    latencies_ms: list[float]
    """One per request, in completion order."""
    errors: int = 0
    """Responses with another status than expected, and connections that failed."""
    first_error: str = ""
    client_cpu_seconds: float = 0.0
    """CPU time the load generator used: near ``seconds`` means the client, not the server, set the pace."""


class Measured(msgspec.Struct, kw_only=True, frozen=True):
    """One side (platform or reference) of a scenario, summed over its runs."""

    requests: int
    concurrency: int
    seconds: float
    throughput: float
    """Requests per second."""
    p50_ms: float
    p99_ms: float
    errors: int
    server_cpu_ms: float | None = None
    """Server process CPU time per request (user + system), less sensitive to a busy machine than throughput."""
    client_cpu_share: float = 0.0
    """Load generator CPU time / wall time."""
    first_error: str = ""


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (``fraction`` in (0, 1]) of unsorted ``values``.

    :raises ValueError: for no values or a fraction outside (0, 1].
    """
    if not values:
        raise ValueError("no values")
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    ordered = sorted(values)
    rank = math.ceil(fraction * len(ordered))
    return ordered[rank - 1]


def combine(runs: Sequence[LoadRun], server_cpu_seconds: float | None = None) -> Measured:
    """Sum runs of the same side: throughput over the total time, percentiles over every latency.

    :raises ValueError: for no runs.
    """
    if not runs:
        raise ValueError("no runs")
    requests = sum(r.requests for r in runs)
    seconds = sum(r.seconds for r in runs)
    latencies = [latency for r in runs for latency in r.latencies_ms]
    errors = sum(r.errors for r in runs)
    return Measured(
        requests=requests,
        concurrency=runs[0].concurrency,
        seconds=seconds,
        throughput=requests / seconds if seconds > 0 else 0.0,
        p50_ms=percentile(latencies, 0.50) if latencies else math.nan,
        p99_ms=percentile(latencies, 0.99) if latencies else math.nan,
        errors=errors,
        server_cpu_ms=None if server_cpu_seconds is None else 1000 * server_cpu_seconds / requests,
        client_cpu_share=sum(r.client_cpu_seconds for r in runs) / seconds if seconds > 0 else 0.0,
        first_error=next((r.first_error for r in runs if r.first_error), ""),
    )
