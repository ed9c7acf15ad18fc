"""``bench/run``: every scenario on SQLite and PostgreSQL, hook dispatch, and scale; a table and results.json."""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

import asyncpg
import msgspec

from bench import hook_dispatch
from bench.databases import Backend, PostgresBackend, SQLiteBackend, platform_settings
from bench.machine import load_average, machine_facts
from bench.options import GROUPS, Options, parse
from bench.report import Row, render_table, write_results
from bench.scale import run_scale
from bench.scenario_run import run_scenario
from bench.scenarios import SCALE_SCENARIO, discover
from bench.scenarios.base import Scenario
from core.logging import configure_logging
from core.settings import PROJECT_ROOT as ROOT
from core.settings import redact_url


def say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def failed_row(name: str, backend: str, exc: BaseException) -> Row:
    say("".join(traceback.format_exception(exc)).rstrip())
    return Row(scenario=name, title=name, backend=backend, error=f"{type(exc).__name__}: {exc}"[:2000])


def make_backend(name: str, options: Options) -> Backend:
    return SQLiteBackend() if name == "sqlite" else PostgresBackend(options.postgres_admin_url)


def run_backend(
    backend: Backend, scenarios: Sequence[Scenario], scale: Scenario | None, options: Options, work: Path,
    emit: Callable[[Row], None],
) -> None:  # fmt: skip
    for scenario in scenarios:
        try:
            emit(run_scenario(scenario, backend, options, work, say))
        except Exception as exc:
            emit(failed_row(scenario.name, backend.name, exc))
    if scale is not None:
        try:
            for row in run_scale(scale, backend, options, work, say):
                emit(row)
        except Exception as exc:
            emit(failed_row(f"scale_{scale.name}", backend.name, exc))


def main(argv: Sequence[str] | None = None) -> int:
    options, listing = parse(argv)
    scenarios, broken = discover()
    if listing:
        for scenario in scenarios:
            print(f"{scenario.name:<24} {scenario.title}")
        for group in GROUPS:
            print(f"{group:<24} {'hook dispatch' if group == 'hooks' else f'scale ({SCALE_SCENARIO})'}")
        for module, reason in broken.items():
            print(f"(not loaded: {module}: {reason})")
        return 0
    known = {s.name for s in scenarios} | set(GROUPS)
    unknown = sorted((options.only or set()) - known)
    if unknown:
        say(f"bench/run: unknown scenario or group {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        return 2
    for module, reason in broken.items():
        say(f"bench/run: scenario module {module} not loaded: {reason}")
    configure_logging(platform_settings("sqlite+aiosqlite:///:memory:"))
    selected = [s for s in scenarios if options.selected(s.name)]
    scale = (
        next((s for s in scenarios if s.name == SCALE_SCENARIO), None) if options.selected("scale") else None
    )
    if options.selected("scale") and scale is None:
        say(f"bench/run: the scale run needs scenario {SCALE_SCENARIO}, which is not loaded")
        return 2
    postgres_version = None
    if "postgres" in options.backends and (selected or scale is not None):
        try:
            postgres_version = PostgresBackend(options.postgres_admin_url).version()
        except (OSError, asyncpg.PostgresError) as exc:
            say(
                f"bench/run: no PostgreSQL at {redact_url(options.postgres_admin_url)} ({exc}); "
                "give --postgres-admin-url, or --backend sqlite"
            )
            return 2
    machine = machine_facts(postgres_version)
    work = Path(tempfile.mkdtemp(prefix="tsunagu-bench-run-"))
    rows: list[Row] = []
    started = time.perf_counter()

    def emit(row: Row) -> None:
        rows.append(row)
        say(render_table([row]).splitlines()[1])

    say(f"bench/run: {'quick run, ' if options.quick else ''}work folder {work}")
    if options.selected("hooks"):
        say("  hook dispatch")
        for row in hook_dispatch.run(options.quick):
            emit(row)
    for name in options.backends:
        if not selected and scale is None:
            break
        backend = make_backend(name, options)
        try:
            run_backend(backend, selected, scale, options, work, emit)
        finally:
            backend.close()
    machine["load_average_at_end"] = load_average()
    machine["seconds"] = round(time.perf_counter() - started, 1)
    settings = msgspec.to_builtins(options, enc_hook=str)
    settings["postgres_admin_url"] = redact_url(options.postgres_admin_url)
    settings["broken_scenarios"] = broken
    settings["output"] = _shown(options.output)  # a path inside the project, not where this checkout lives
    write_results(options.output, machine, settings, rows)
    print(render_table(rows))
    if options.markdown:
        print()
        print(render_table(rows, markdown=True))
    say(
        f"bench/run: wrote {options.output}; server logs in {work}"
        if options.keep
        else f"bench/run: wrote {options.output}"
    )
    if not options.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if any(row.status in ("error", "invalid") for row in rows) else 0


def _shown(path: Path) -> str:
    """``path`` as results.json records it: inside the project, not where this checkout lives."""
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return path.name


if __name__ == "__main__":
    sys.exit(main())
