"""What ``bench/run`` is told to do, and that its set-ups measure what they claim to."""

from __future__ import annotations

import pytest

from bench import hook_dispatch
from bench.options import parse
from bench.prepare import region_manifests, with_plugins
from bench.report import below
from bench.scenarios import SCALE_SCENARIO, discover
from bench.scenarios.base import Scenario


def test_quick_scales_the_work_down_and_flags_can_override_it() -> None:
    full, _ = parse([])
    quick, _ = parse(["--quick", "--backend", "sqlite", "--only", "notices_write, hooks"])
    assert (full.requests, full.rounds, full.concurrency) == (20_000, 2, 32)
    assert quick.requests < full.requests and quick.backends == ("sqlite",)
    assert quick.only == {"notices_write", "hooks"}
    assert quick.selected("hooks") and not quick.selected("scale") and full.selected("scale")
    assert parse(["--quick", "--requests", "5000"])[0].requests == 5000


@pytest.mark.parametrize(
    "argv", [["--requests", "0"], ["--rounds", "3", "--requests", "2"], ["--backend", "mysql"]]
)
def test_bad_options_are_a_usage_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        parse(argv)
    assert exit_.value.code == 2
    assert "bench/run: error:" in capsys.readouterr().err


def test_every_scenario_loads_and_the_scale_run_has_its_write_path() -> None:
    scenarios, broken = discover()
    assert broken == {}
    names = [s.name for s in scenarios]
    assert len(names) == len(set(names)) and SCALE_SCENARIO in names
    for scenario in scenarios:
        assert scenario.plugins, f"{scenario.name} names no plugin to enable"


def test_a_scenarios_plugins_are_enabled_with_its_settings_over_the_manifests_own() -> None:
    manifests, _ = region_manifests()
    miki = next(m for m in manifests if m.slug == "miki")
    own = miki.plugins["booking"].settings
    changed = with_plugins(miki, {"booking": {"max_bookings_per_month": 100}, "bench_extra": {"level": 2}})
    assert changed.plugins["booking"].settings == {**own, "max_bookings_per_month": 100}
    assert own["max_bookings_per_month"] != 100 and changed.plugins["booking"].enabled
    assert changed.plugins["bench_extra"].enabled and changed.plugins["bench_extra"].settings == {"level": 2}
    assert with_plugins(miki, {"notices": {}}) is miki


def test_hook_dispatch_reaches_exactly_the_enabled_plugins_on_both_sides() -> None:
    plugins = hook_dispatch.make_plugins(hook_dispatch.INSTALLED)
    enabled = plugins[::2][: hook_dispatch.ENABLED]
    platform, municipality = hook_dispatch.platform_with(plugins, enabled)
    pm = hook_dispatch.pluggy_with(enabled)
    for name in ("problem_for_exception", "on_request_bound"):
        ours = [i.plugin_name for i in getattr(platform.hooks(municipality), name).get_hookimpls()]
        theirs = [i.plugin_name for i in getattr(pm.hook, name).get_hookimpls()]
        assert ours == theirs
        assert {n for n in ours if n.startswith("bench_")} == {p.meta.name for p in enabled}
    assert len(platform.plugins.plugins) == hook_dispatch.INSTALLED


def test_a_scenario_with_a_goal_on_an_unknown_figure_is_left_out_and_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bench.scenarios import notices_read

    class Typo(Scenario):
        name = "typo"
        title = "typo"
        reference_module = "bench.reference.notices"
        goals = {"p95_ms": below(50)}

    monkeypatch.setattr(notices_read, "SCENARIO", Typo())
    scenarios, broken = discover()
    assert "typo" not in {s.name for s in scenarios}
    assert "p95_ms" in broken["bench.scenarios.notices_read"]
