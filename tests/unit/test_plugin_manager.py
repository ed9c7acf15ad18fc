"""The plugin manager (``core.plugins.manager``): start-up checks, dispatch to the enabled set, isolation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pluggy
import pytest
from hypothesis import given
from hypothesis import strategies as st

import core.plugins.manager
from core import Plugin, PluginMeta, Title, hookimpl
from core.defaults import DEFAULT_PLUGINS
from core.exceptions import NotFound
from core.http.problems import Problem
from core.platform import create_platform
from core.plugins.loader import LoadResult
from core.plugins.manager import PluginHost, create_plugin_manager
from core.settings import Settings
from core.tenancy.registry import Municipality
from tests.plugin_helpers import captured_logs

TITLE = Title(ja="試験", en="Test")
MIKI = Municipality(
    id=1,
    slug="miki",
    code="373419",
    name="三木町",
    name_en="Miki Town",
    hosts=(),
    timezone="Asia/Tokyo",
    locale="ja",
)
NAMES = ("alpha", "bravo", "charlie", "delta")


class Mine(Exception):
    """An exception type only the plugin that owns it knows how to present."""


def recording_plugin(name: str, calls: list[str]) -> Plugin:
    """A plugin that notes every per-municipality hook call and answers for :class:`Mine`."""

    class Recording(Plugin):
        meta = PluginMeta(name=name, version="1.0", title=TITLE)

        @hookimpl
        def on_request_bound(self, municipality: Municipality, path: str, method: str) -> None:
            calls.append(name)

        @hookimpl
        def problem_for_exception(
            self, exception: BaseException, municipality: Municipality | None
        ) -> Problem | None:
            calls.append(name)
            return Problem(title=name, status=418) if isinstance(exception, Mine) else None

    return Recording()


def host_with(*plugins: Plugin) -> PluginHost:
    loaded = LoadResult(plugins={p.name: p for p in plugins}, origins={p.name: "test" for p in plugins})
    return PluginHost(create_plugin_manager(loaded, DEFAULT_PLUGINS), loaded)


@pytest.fixture(scope="module")
def recorded() -> Iterator[tuple[PluginHost, list[str]]]:
    calls: list[str] = []
    host = host_with(*(recording_plugin(name, calls) for name in NAMES))
    try:
        yield host, calls
    finally:
        for name in NAMES:
            host.pm.unregister(name=name)


# --- start-up -----------------------------------------------------------------------------------------------


class Misspelt(Plugin):
    meta = PluginMeta(name="misspelt", version="1.0", title=TITLE)

    @hookimpl
    def on_request_bond(self, municipality: Municipality, path: str, method: str) -> None:
        """``on_request_bound`` with a typo: would silently never be called."""


class WrongArguments(Plugin):
    meta = PluginMeta(name="wrong_arguments", version="1.0", title=TITLE)

    @hookimpl
    def on_request_bound(self, municipality: Municipality, url: str) -> None:
        """``url`` is not an argument of the hook."""


def test_misspelt_hook_implementation_fails_at_start_up(tmp_path: Path) -> None:
    loaded = LoadResult(plugins={"misspelt": Misspelt()}, origins={"misspelt": "test"})
    with pytest.raises(pluggy.PluginValidationError, match="unknown hook 'on_request_bond'"):
        create_plugin_manager(loaded, DEFAULT_PLUGINS)
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/x.sqlite3", environment="test")
    with pytest.raises(pluggy.PluginValidationError, match="on_request_bond"):
        create_platform(settings, extra_plugins=[Misspelt()], use_entry_points=False)


def test_hook_implementation_with_unknown_arguments_fails_at_start_up() -> None:
    loaded = LoadResult(plugins={"wrong_arguments": WrongArguments()}, origins={"wrong_arguments": "test"})
    with pytest.raises(pluggy.PluginValidationError, match="url"):
        create_plugin_manager(loaded, DEFAULT_PLUGINS)


def test_loaded_plugins_are_registered_under_their_names() -> None:
    calls: list[str] = []
    host = host_with(recording_plugin("alpha", calls))
    assert host.pm.get_plugin("alpha") is host.plugins["alpha"]
    assert host.pm.get_plugin("core") is DEFAULT_PLUGINS[0]
    assert host.pm.get_hookcallers(host.plugins["alpha"])


# --- dispatch to the plugins enabled for a municipality -----------------------------------------------------


enabled_sets = st.lists(st.frozensets(st.sampled_from(NAMES)), min_size=1, max_size=8)


@given(sequence=enabled_sets)
def test_hooks_reach_exactly_the_enabled_plugins(
    recorded: tuple[PluginHost, list[str]], sequence: list[frozenset[str]]
) -> None:
    """Whatever enablement changes come, in any order, each call reaches exactly the plugins enabled then."""
    host, calls = recorded
    for enabled in sequence:
        calls.clear()
        host.hooks_for(enabled).on_request_bound(municipality=MIKI, path="/", method="GET")
        assert sorted(calls) == sorted(enabled)

        calls.clear()
        host.notify(enabled, "on_request_bound", municipality=MIKI, path="/", method="GET")
        assert sorted(calls) == sorted(enabled)

        calls.clear()
        problem = host.hooks_for(enabled).problem_for_exception(exception=Mine(), municipality=MIKI)
        if enabled:
            assert len(calls) == 1 and problem.title in enabled  # first answer wins, from an enabled plugin
        else:
            assert calls == [] and problem.status == 500  # only the core default is left


def test_relay_for_an_enabled_set_is_reused_and_differs_between_sets(
    recorded: tuple[PluginHost, list[str]],
) -> None:
    host, _ = recorded
    assert host.hooks_for(frozenset({"alpha"})) is host.hooks_for(frozenset({"alpha"}))
    assert host.hooks_for(frozenset({"alpha"})) is not host.hooks_for(frozenset({"alpha", "bravo"}))
    with pytest.raises(AttributeError, match="no hook named 'on_request_bond'"):
        host.hooks_for(frozenset()).on_request_bond  # noqa: B018


def test_all_hooks_reach_every_loaded_plugin(recorded: tuple[PluginHost, list[str]]) -> None:
    host, calls = recorded
    calls.clear()
    host.all_hooks.on_request_bound(municipality=MIKI, path="/", method="GET")
    assert sorted(calls) == sorted(NAMES)
    calls.clear()
    host.notify(None, "on_request_bound", municipality=MIKI, path="/", method="GET")
    assert sorted(calls) == sorted(NAMES)


def test_core_default_answers_when_no_plugin_does(recorded: tuple[PluginHost, list[str]]) -> None:
    host, _ = recorded
    problem = host.hooks_for(frozenset(NAMES)).problem_for_exception(
        exception=NotFound("no notice 7"), municipality=MIKI
    )
    assert (problem.status, problem.title, problem.detail) == (404, "Not found", "no notice 7")
    assert problem.type == "urn:tsunagu:problem:not-found"


# --- notification-style hooks: one plugin raising does not stop the rest ------------------------------------


class Raising(Plugin):
    meta = PluginMeta(name="raising", version="1.0", title=TITLE)

    def __init__(self, calls: list[str]) -> None:
        self.calls = calls

    @hookimpl
    def on_request_bound(self, municipality: Municipality) -> None:  # a hookimpl may take fewer arguments
        self.calls.append("raising")
        raise RuntimeError("raising plugin failed")


def test_notify_logs_a_raising_plugin_by_name_and_goes_on(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    # Registered last, so called first: the others come after the failure.
    host = host_with(recording_plugin("alpha", calls), recording_plugin("bravo", calls), Raising(calls))

    with captured_logs(monkeypatch, core.plugins.manager) as logs:
        host.notify(
            frozenset({"alpha", "bravo", "raising"}),
            "on_request_bound",
            municipality=MIKI,
            path="/p",
            method="GET",
        )

    assert calls == ["raising", "bravo", "alpha"]
    failures = [e for e in logs if e["event"] == "plugin.hook_failed"]
    assert [(e["plugin"], e["hook"], e["log_level"], e["exc_info"]) for e in failures] == [
        ("raising", "on_request_bound", "error", True)
    ]


def test_notify_skips_a_raising_plugin_that_is_not_enabled(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    host = host_with(recording_plugin("alpha", calls), Raising(calls))
    with captured_logs(monkeypatch, core.plugins.manager) as logs:
        host.notify(frozenset({"alpha"}), "on_request_bound", municipality=MIKI, path="/", method="GET")
    assert calls == ["alpha"]
    assert [e for e in logs if e["event"] == "plugin.hook_failed"] == []


def test_a_raising_plugin_is_not_isolated_outside_notify() -> None:
    """Hooks that ask for an answer propagate errors: only ``on_*`` hooks go through ``notify``."""
    host = host_with(Raising([]))
    relay: Any = host.hooks_for(frozenset({"raising"}))
    with pytest.raises(RuntimeError, match="raising plugin failed"):
        relay.on_request_bound(municipality=MIKI, path="/", method="GET")
