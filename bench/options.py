"""The options of ``bench/run``: what to run, and how much work (a full run, or ``--quick``)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path

import msgspec

BENCH = Path(__file__).resolve().parent
BACKENDS = ("sqlite", "postgres")
GROUPS = ("hooks", "scale")
"""Parts of a run besides the HTTP scenarios, selectable with ``--only``."""
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


class Options(msgspec.Struct, kw_only=True, frozen=True):
    backends: tuple[str, ...]
    only: frozenset[str] | None
    """Scenario names and groups to run; ``None`` for everything."""
    quick: bool
    requests: int
    """Measured requests per side and scenario (split over the rounds)."""
    warmup: int
    concurrency: int
    latency_requests: int
    """Requests sent one at a time for the latency goals."""
    rounds: int
    startups: int
    """Start-ups timed per server in the scale run (the median is reported)."""
    log_level: str
    postgres_admin_url: str
    output: Path
    profile: Path | None
    markdown: bool
    keep: bool

    def __post_init__(self) -> None:
        for name in ("requests", "concurrency", "rounds", "startups", "latency_requests"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name} must be at least 1, got {getattr(self, name)}")
        if self.warmup < 0:
            raise ValueError(f"--warmup must be 0 or more, got {self.warmup}")
        if self.requests < self.rounds:
            raise ValueError(f"--requests ({self.requests}) must be at least --rounds ({self.rounds})")

    def selected(self, name: str) -> bool:
        return self.only is None or name in self.only


FULL = {"requests": 20_000, "warmup": 1_000, "rounds": 2, "startups": 3, "latency_requests": 1_000}
QUICK = {"requests": 1_000, "warmup": 200, "rounds": 1, "startups": 1, "latency_requests": 200}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bench/run",
        description="Platform overhead against a bare reference, and scale to every municipality in Japan. "
        "Prints a table and writes bench/results.json (see docs/performance.md).",
    )
    p.add_argument("--backend", choices=[*BACKENDS, "both"], default="both")
    p.add_argument(
        "--only",
        metavar="NAMES",
        help="comma-separated scenario names and groups to run (hooks, scale); see --list",
    )
    p.add_argument("--list", action="store_true", help="list the scenarios and groups, then stop")
    p.add_argument(
        "--quick", action="store_true", help="a short run to check the harness (figures not for quoting)"
    )
    p.add_argument("--requests", type=int, help="measured requests per side (default 20000, quick 1000)")
    p.add_argument("--warmup", type=int, help="unmeasured requests first (default 1000, quick 200)")
    p.add_argument("--concurrency", type=int, default=32, help="connections (default 32)")
    p.add_argument(
        "--latency-requests",
        type=int,
        help="requests sent one at a time for latency goals (default 1000, quick 200)",
    )
    p.add_argument("--rounds", type=int, help="interleaved runs per side (default 2, quick 1)")
    p.add_argument("--startups", type=int, help="timed start-ups per server in the scale run (default 3)")
    p.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="TSUNAGU_LOG_LEVEL of the platform's server (default info, as deployed: one access line a request)",
    )
    p.add_argument(
        "--postgres-admin-url",
        default=os.environ.get("TSUNAGU_BENCH_POSTGRES_URL", DEFAULT_ADMIN_URL),
        help="a superuser URL to create and drop the throwaway databases (env TSUNAGU_BENCH_POSTGRES_URL)",
    )
    p.add_argument("--output", type=Path, default=BENCH / "results.json")
    p.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="profile each tsunagu serve (bench/sampler.py) into DIR/<scenario>-<backend>.txt "
        "(figures of such a run are for finding costs, not for quoting)",
    )
    p.add_argument("--markdown", action="store_true", help="also print the table as Markdown")
    p.add_argument("--keep", action="store_true", help="keep the work folder (server logs, manifests)")
    return p


def _size(given: int | None, default: int) -> int:
    return default if given is None else given


def parse(argv: Sequence[str] | None = None) -> tuple[Options, bool]:
    """The options, and whether only a listing was asked for.

    :raises SystemExit: (2) on bad usage, with argparse's message.
    """
    p = parser()
    args = p.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    try:
        options = Options(
            backends=BACKENDS if args.backend == "both" else (args.backend,),
            only=frozenset(n.strip() for n in args.only.split(",") if n.strip()) if args.only else None,
            quick=args.quick,
            requests=_size(args.requests, sizes["requests"]),
            warmup=_size(args.warmup, sizes["warmup"]),
            concurrency=args.concurrency,
            latency_requests=_size(args.latency_requests, sizes["latency_requests"]),
            rounds=_size(args.rounds, sizes["rounds"]),
            startups=_size(args.startups, sizes["startups"]),
            log_level=args.log_level,
            postgres_admin_url=args.postgres_admin_url,
            output=args.output,
            profile=args.profile,
            markdown=args.markdown,
            keep=args.keep,
        )
    except ValueError as exc:
        p.error(str(exc))
    return options, args.list
