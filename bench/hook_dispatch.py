"""Hook dispatch: what calling a per-municipality hook costs above pluggy's own call.

Ten plugins are installed, five of them enabled for the municipality. The platform's two ways of calling a
per-municipality hook are timed against pluggy calling the same hook on a manager that holds only those five
(and the core's default plugin):

- ``call``: ``platform.hooks(municipality).problem_for_exception(...)``, a subset hook caller (firstresult);
- ``notify``: ``platform.notify(municipality, "on_request_bound", ...)``, one implementation at a time with
  each plugin's errors isolated -- the call made on every request bound to a municipality.

In process: many calls timed at a time (timeit, garbage collection off), the two sides in alternation, the best
of several such timings of each.
"""

from __future__ import annotations

import math
import timeit
from typing import Any

import pluggy

from bench.report import Figure, Row, below
from core import Plugin, PluginMeta, Title, hookimpl, hookspecs
from core.defaults import DEFAULT_PLUGINS
from core.exceptions import NotFound
from core.platform import Platform, create_platform
from core.settings import Settings
from core.tenancy.registry import Municipality, TenantSnapshot

INSTALLED = 10
ENABLED = 5
GOAL_US = 5.0


class _HookPlugin(Plugin):
    @hookimpl
    def on_request_bound(self, municipality: Municipality, path: str, method: str) -> None:
        return None

    @hookimpl
    def problem_for_exception(self, exception: BaseException, municipality: Municipality | None) -> None:
        return None


def make_plugins(count: int) -> list[Plugin]:
    """``count`` distinct plugins implementing the two hooks (each answers nothing, so all are called)."""
    plugins = []
    for index in range(count):
        meta = PluginMeta(name=f"bench_hooks_{index}", version="1.0", title=Title(ja="ベンチ", en="Bench"))
        plugins.append(type(f"BenchHooks{index}", (_HookPlugin,), {"meta": meta})())
    return plugins


def platform_with(plugins: list[Plugin], enabled: list[Plugin]) -> tuple[Platform, Municipality]:
    """A platform with ``plugins`` installed and one municipality that enables ``enabled`` (no database use)."""
    settings = Settings(database_url="sqlite+aiosqlite:///:memory:", environment="test", secret_key="s" * 40)
    platform = create_platform(settings, extra_plugins=plugins, use_entry_points=False)
    municipality = Municipality(
        id=1, slug="miki", code="373419", name="三木町", name_en="Miki", hosts=("miki.localhost",),
        timezone="Asia/Tokyo", locale="ja",
    )  # fmt: skip
    platform.snapshot = TenantSnapshot(
        revision=1,
        by_id={1: municipality},
        by_slug={"miki": municipality},
        by_host={"miki.localhost": municipality},
        enabled={1: frozenset(p.meta.name for p in enabled)},
        settings={},
    )
    return platform, municipality


def pluggy_with(enabled: list[Plugin]) -> pluggy.PluginManager:
    """pluggy alone: the specs, the core's default plugin and ``enabled``."""
    pm = pluggy.PluginManager("tsunagu")
    pm.add_hookspecs(hookspecs)
    for index, default in enumerate(DEFAULT_PLUGINS):
        pm.register(default, name="core" if index == 0 else f"core.{index}")
    for plugin in enabled:
        pm.register(plugin, name=plugin.meta.name)
    return pm


def microseconds(ours: Any, theirs: Any, quick: bool) -> tuple[float, float]:
    """Best per-call time of each of two statements, in µs, timed in alternation so that a busy moment of the
    machine hits both."""
    timers = (timeit.Timer(ours), timeit.Timer(theirs))
    number = max(max(t.autorange()[0] for t in timers), 10_000 if quick else 50_000)
    best = [math.inf, math.inf]
    for _ in range(5 if quick else 15):
        for index, timer in enumerate(timers):
            best[index] = min(best[index], timer.timeit(number) / number * 1e6)
    return best[0], best[1]


def run(quick: bool = False) -> list[Row]:
    plugins = make_plugins(INSTALLED)
    enabled = plugins[::2][:ENABLED]
    platform, municipality = platform_with(plugins, enabled)
    pm = pluggy_with(enabled)
    exception = NotFound("no such notice")
    pairs = {
        "call": (
            lambda: platform.hooks(municipality).problem_for_exception(
                exception=exception, municipality=municipality
            ),
            lambda: pm.hook.problem_for_exception(exception=exception, municipality=municipality),
        ),
        "notify": (
            lambda: platform.notify(
                municipality, "on_request_bound", municipality=municipality, path="/", method="GET"
            ),
            lambda: pm.hook.on_request_bound(municipality=municipality, path="/", method="GET"),
        ),
    }
    rows = []
    for kind, (ours, theirs) in pairs.items():
        ours()
        theirs()  # both answer before they are timed
        tsunagu_us, pluggy_us = microseconds(ours, theirs, quick)
        rows.append(
            Row(
                scenario=f"hook_dispatch_{kind}",
                title=f"hook dispatch ({kind})",
                figures=[
                    Figure(
                        name="above pluggy", value=tsunagu_us - pluggy_us, unit=" µs", goal=below(GOAL_US)
                    ),
                    Figure(name="tsunagu", value=tsunagu_us, unit=" µs"),
                    Figure(name="pluggy", value=pluggy_us, unit=" µs"),
                ],
                notes=[f"{INSTALLED} plugins installed, {ENABLED} enabled for the municipality"],
            )
        )
    return rows
