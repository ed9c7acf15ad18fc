"""One HTTP scenario on one backend: the platform and the reference, served side by side, measured in turn."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from bench import profiling
from bench.comparison import Side, alone, compare
from bench.databases import Backend
from bench.options import Options
from bench.prepare import prepare_platform, prepare_reference, region_manifests
from bench.report import Figure, Row, ratio
from bench.scenarios.base import Scenario
from bench.servers import Server, platform_server, reference_server
from bench.stats import Measured

BUSY_CLIENT = 0.8
"""A load generator busy this share of the time may itself have set the pace: said in the row's notes."""


def client_notes(*sides: tuple[str, Measured]) -> list[str]:
    return [
        f"the load generator was busy {m.client_cpu_share:.0%} of the time on {name}: it may have set the pace"
        for name, m in sides
        if m.client_cpu_share >= BUSY_CLIENT
    ]


LATENCY_GOALS = {"p50_ms": "p50", "p99_ms": "p99"}
"""Latency goals are checked on requests sent one at a time: at 32 connections a request's latency is mostly
its wait in the queue (latency = connections / throughput)."""


def scenario_figures(
    scenario: Scenario, platform: Measured, reference: Measured, single: Measured | None = None
) -> list[Figure]:
    goals = scenario.goals
    figures = [Figure(name="ratio", value=ratio(platform, reference), goal=goals.get("ratio"))]
    for key, label in LATENCY_GOALS.items():
        if key in goals and single is not None:
            figures.append(
                Figure(name=f"{label} alone", value=getattr(single, key), unit=" ms", goal=goals[key])
            )
    if platform.server_cpu_ms and reference.server_cpu_ms:
        figures.append(Figure(name="CPU ratio", value=reference.server_cpu_ms / platform.server_cpu_ms))
    return figures


def run_scenario(
    scenario: Scenario, backend: Backend, options: Options, work: Path, progress: Callable[[str], None]
) -> Row:
    latency = bool(LATENCY_GOALS.keys() & scenario.goals.keys())
    total = options.warmup + options.requests + (options.latency_requests if latency else 0)
    manifests, sources = region_manifests()
    platform_url, reference_url = backend.platform_database(), backend.reference_database()
    progress(f"  {scenario.name} on {backend.name}: preparing")
    platform_templates, _ = asyncio.run(prepare_platform(platform_url, manifests, sources, scenario, total))
    reference_templates = asyncio.run(prepare_reference(reference_url, scenario, total))
    tag = f"{scenario.name}-{backend.name}"
    profile = profiling.output(options.profile, tag)
    servers: list[Server] = [
        platform_server(
            platform_url, work / f"{tag}-tsunagu.log", log_level=options.log_level, profile=profile
        ),
        reference_server(reference_url, [scenario.reference_module], work / f"{tag}-reference.log"),
    ]
    try:
        for server in servers:
            server.start()
        for server in servers:
            server.wait_ready()
        sides = [
            Side("tsunagu", servers[0], platform_templates, scenario.expect_status, options.warmup),
            Side("reference", servers[1], reference_templates, scenario.expect_status, options.warmup),
        ]
        with profiling.sampling(servers[0] if profile else None):
            compare(
                sides,
                requests=options.requests,
                concurrency=options.concurrency,
                rounds=options.rounds,
                progress=progress,
            )
        singles = [alone(side, options.latency_requests) for side in sides] if latency else [None, None]
        rss_kb = servers[0].rss_kb()
    finally:
        for server in servers:
            server.stop()
    platform, reference = sides[0].measured(), sides[1].measured()
    row = Row(
        scenario=scenario.name,
        title=scenario.title,
        backend=backend.name,
        platform=platform,
        reference=reference,
        figures=scenario_figures(scenario, platform, reference, singles[0]),
        notes=[
            f"tsunagu server: {rss_kb / 1024:.0f} MiB resident after the runs",
            *(
                f"{name}, one connection: {m.p50_ms:.1f} ms p50, {m.p99_ms:.1f} ms p99, {m.throughput:.0f} req/s"
                for name, m in zip(("tsunagu", "reference"), singles, strict=True)
                if m is not None
            ),
            *client_notes(("tsunagu", platform), ("reference", reference)),
        ],
    )
    if profile is not None:
        row.notes.append(profiling.summarise(profile))
    return row
