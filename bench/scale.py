"""Scale: the same write run with the region's 8 municipalities and with 1,741 (every municipality in Japan).

The 1,733 beyond the region are synthetic (see :mod:`bench.synthetic`), written as manifest files and applied
through the same service as ``tsunagu municipality apply``. Both platforms are served at once and measured in
turn; requests go round-robin over every municipality, each with its own API key, addressed by ``Host``.

- throughput ratio 1,741 : 8 (goal ≥ 0.9);
- start-up of ``tsunagu serve`` until ``/readyz`` answers, with 1,741 (goal < 5 s; median of ``--startups``);
- resident memory of the server after the runs: growth per municipality from 8 to 1,741 (goal < 50 KB).
"""

from __future__ import annotations

import asyncio
import statistics
from collections.abc import Callable
from pathlib import Path

from bench import profiling
from bench.comparison import Side, compare
from bench.databases import Backend
from bench.load import cpu_seconds
from bench.options import Options
from bench.prepare import prepare_platform, region_manifests
from bench.report import Figure, Row, at_least, below
from bench.scenario_run import client_notes
from bench.scenarios.base import Scenario
from bench.servers import Server, platform_server
from bench.synthetic import JAPAN, synthetic_manifests, write_manifests
from core.tenancy.manifest import load_manifests

THROUGHPUT_GOAL = at_least(0.9)
STARTUP_GOAL_S = below(5.0)
MEMORY_GOAL_KB = below(50.0)


def timed_startups(server: Server, count: int) -> tuple[list[float], list[float]]:
    """Start ``server`` ``count`` times: the seconds until ``/readyz`` answers, and the CPU seconds the process
    used by then (which a busy machine does not inflate). It stays up after the last."""
    times, cpu = [], []
    for attempt in range(count):
        server.start()
        times.append(server.wait_ready())
        cpu.append(cpu_seconds(server.pid))
        if attempt < count - 1:
            server.stop()
    return times, cpu


def run_scale(
    scenario: Scenario, backend: Backend, options: Options, work: Path, progress: Callable[[str], None]
) -> list[Row]:
    region, region_sources = region_manifests()
    folder = work / f"manifests-{backend.name}"
    paths = write_manifests(synthetic_manifests(JAPAN - len(region), scenario.plugins, beside=region), folder)
    synthetic = load_manifests(paths)
    everyone = [*region, *synthetic]
    small_url, large_url = backend.platform_database(), backend.platform_database()
    small_total = options.warmup + options.requests
    large_warmup = max(options.warmup, len(everyone))  # every municipality's first request is a warm-up one
    progress(f"  scale on {backend.name}: preparing 8 and {len(everyone)} municipalities")
    small_templates, _ = asyncio.run(
        prepare_platform(small_url, region, region_sources, scenario, small_total)
    )
    large_templates, apply_s = asyncio.run(
        prepare_platform(
            large_url,
            everyone,
            [*region_sources, *(str(p) for p in paths)],
            scenario,
            large_warmup + options.requests,
        )
    )
    small = platform_server(
        small_url,
        work / f"scale-8-{backend.name}.log",
        log_level=options.log_level,
        profile=profiling.output(options.profile, f"scale-8-{backend.name}"),
    )
    large = platform_server(
        large_url,
        work / f"scale-{len(everyone)}-{backend.name}.log",
        log_level=options.log_level,
        profile=profiling.output(options.profile, f"scale-{len(everyone)}-{backend.name}"),
    )
    try:
        small_startups, small_cpu = timed_startups(small, options.startups)
        large_startups, large_cpu = timed_startups(large, options.startups)
        sides = [
            Side(
                f"{len(everyone)} municipalities",
                large,
                large_templates,
                scenario.expect_status,
                large_warmup,
            ),
            Side("8 municipalities", small, small_templates, scenario.expect_status, options.warmup),
        ]
        with profiling.sampling(*((small, large) if options.profile else ())):
            compare(
                sides,
                requests=options.requests,
                concurrency=options.concurrency,
                rounds=options.rounds,
                progress=progress,
            )
        small_rss, large_rss = small.rss_kb(), large.rss_kb()
    finally:
        small.stop()
        large.stop()
    many, few = sides[0].measured(), sides[1].measured()
    growth_kb = (large_rss - small_rss) * 1024 / 1000 / (len(everyone) - len(region))
    title = scenario.title
    return [
        Row(
            scenario=f"scale_{scenario.name}_8",
            title=f"{title}, 8 municipalities",
            backend=backend.name,
            platform=few,
            notes=client_notes(("8 municipalities", few)),
        ),
        Row(
            scenario=f"scale_{scenario.name}_{len(everyone)}",
            title=f"{title}, {len(everyone):,} municipalities",
            backend=backend.name,
            platform=many,
            figures=[Figure(name="vs 8", value=many.throughput / few.throughput, goal=THROUGHPUT_GOAL)],
            notes=client_notes((f"{len(everyone)} municipalities", many)),
        ),
        Row(
            scenario="scale_startup",
            title=f"start-up, {len(everyone):,} municipalities",
            backend=backend.name,
            figures=[
                Figure(
                    name="start-up", value=statistics.median(large_startups), unit=" s", goal=STARTUP_GOAL_S
                ),
                Figure(name="with 8", value=statistics.median(small_startups), unit=" s"),
                Figure(name="CPU", value=statistics.median(large_cpu), unit=" s"),
                Figure(name="CPU with 8", value=statistics.median(small_cpu), unit=" s"),
            ],
            notes=[
                f"tsunagu serve until /readyz answers, median of {options.startups}; CPU: what the process "
                "used by then"
            ],
        ),
        Row(
            scenario="scale_memory",
            title="memory per municipality",
            backend=backend.name,
            figures=[
                Figure(name="growth", value=growth_kb, unit=" KB", goal=MEMORY_GOAL_KB),
                Figure(name="RSS with 8", value=small_rss / 1024, unit=" MiB"),
                Figure(name=f"with {len(everyone):,}", value=large_rss / 1024, unit=" MiB"),
            ],
            notes=["resident memory of the server process after the runs"],
        ),
        Row(
            scenario="scale_apply",
            title=f"apply {len(everyone):,} manifests",
            backend=backend.name,
            figures=[Figure(name="apply", value=apply_s, unit=" s")],
            notes=["one transaction, with the audit events of every change"],
        ),
    ]
