"""Plugins per municipality, end to end: the vendor path, broken plugins, hooks, enablement rules.

Throwaway plugins are passed to ``create_platform(extra_plugins=...)`` by the ``make_platform`` fixture, which
closes every platform it made in a ``finally``; throwaway distributions live in ``tmp_path`` and leave
``sys.path`` with the test.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
import structlog
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar import Controller, get

import cli
import core.defaults
import core.plugins.loader
import core.plugins.manager
from core import Plugin, PluginMeta, Title, hookimpl
from core.app import create_app
from core.exceptions import PluginError
from core.http.problems import PROBLEM_MEDIA_TYPE, Problem, problem_type
from core.platform import Platform, create_platform
from core.tenancy import service
from core.tenancy.manifest import load_manifests
from core.tenancy.registry import Municipality
from tests.asgi import lifespan_client
from tests.conftest import MANIFESTS
from tests.conftest import test_settings as settings_for
from tests.plugin_helpers import (
    DbState,
    captured_logs,
    db_state,
    forget_modules,
    unique_module,
    write_distribution,
)

SLUGS = ["ayagawa", "higashikagawa", "miki", "naoshima", "sanuki", "shodoshima", "takamatsu", "tonosho"]
TITLE = Title(ja="試験", en="Test")
sqlite_only = pytest.mark.parametrize("backend", ["sqlite"])

MakePlatform = Callable[..., Awaitable[Platform]]


async def _prepare(platform: Platform) -> Platform:
    await platform.refresh(force=True)
    await service.apply_manifests(platform, load_manifests(MANIFESTS), [str(p) for p in MANIFESTS])
    return platform


@pytest.fixture
async def make_platform(database_url: str) -> AsyncIterator[MakePlatform]:
    """Platforms on the test database, with throwaway plugins and the manifests applied; closed after."""
    made: list[Platform] = []

    async def make(*extra: Plugin) -> Platform:
        platform = create_platform(settings_for(database_url), extra_plugins=extra)
        made.append(platform)
        return await _prepare(platform)

    try:
        yield make
    finally:
        for platform in made:
            await platform.close()


@asynccontextmanager
async def serving(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    async with lifespan_client(create_app(platform=platform, run_jobs_in_process=False)) as client:
        yield client


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


async def refused(platform: Platform, call: Awaitable[object]) -> str:
    """Await ``call``, which must raise :class:`PluginError` and change nothing; return its message."""
    before, revision = await db_state(platform), platform.snapshot.revision
    with pytest.raises(PluginError) as caught:
        await call
    assert await db_state(platform) == before
    assert platform.snapshot.revision == revision
    return caught.value.detail


# --- the vendor path: a separate package, found through its entry point -------------------------------------


async def test_vendor_plugin_is_found_through_its_entry_point_and_enabled_by_manifest(
    platform: Platform,
) -> None:
    import tsunagu_opinion_box

    assert platform.plugins.origins["opinion_box"] == "tsunagu_opinion_box:plugin"
    assert platform.plugins.plugins["opinion_box"] is tsunagu_opinion_box.plugin
    assert platform.plugins.pm.get_plugin("opinion_box") is tsunagu_opinion_box.plugin
    assert sorted(platform.snapshot.by_slug) == SLUGS
    where = {slug for slug in SLUGS if platform.is_enabled(platform.municipality(slug), "opinion_box")}
    assert where == {"miki"}
    assert platform.plugin_settings(platform.municipality("miki"), "opinion_box").reply_days == 14


async def test_vendor_plugin_routes_exist_only_where_it_is_enabled(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    sent = await client.post("/m/miki/opinion_box/", json={"topic": "道路", "body": "街灯が切れています"})
    assert sent.status_code == 201, sent.text
    receipt = sent.json()["receipt"]
    assert (await client.get(f"/m/miki/opinion_box/{receipt}")).json()["status"] == "received"
    front = (await client.get("/m/miki/")).json()
    assert "opinion_box" in {s["name"] for s in front["services"]}

    for slug in SLUGS:
        if slug == "miki":
            continue
        assert_problem(await client.post(f"/m/{slug}/opinion_box/", json={"topic": "t", "body": "b"}), 404)
        assert_problem(await client.get(f"/m/{slug}/opinion_box/{receipt}"), 404)
        assert (await client.get(f"/m/{slug}/notices/")).status_code == 200

    await service.set_plugin_enabled(platform, "sanuki", "opinion_box", True)
    sent = await client.post("/m/sanuki/opinion_box/", json={"topic": "公園", "body": "遊具の修理を"})
    assert sent.status_code == 201, sent.text
    assert (await client.get(f"/m/sanuki/opinion_box/{sent.json()['receipt']}")).status_code == 200
    assert_problem(await client.get(f"/m/sanuki/opinion_box/{receipt}"), 404)  # miki's opinion stays miki's

    await service.set_plugin_enabled(platform, "miki", "opinion_box", False)
    assert_problem(await client.get(f"/m/miki/opinion_box/{receipt}"), 404)
    assert_problem(await client.post("/m/miki/opinion_box/", json={"topic": "t", "body": "b"}), 404)
    front = (await client.get("/m/miki/")).json()
    assert "opinion_box" not in {s["name"] for s in front["services"]}
    assert (await client.post("/m/sanuki/opinion_box/", json={"topic": "t", "body": "b"})).status_code == 201


# --- broken plugins are reported and left out; the rest keep running ----------------------------------------


def _vendor_module(name: str, extra_meta: str) -> str:
    return (
        "from typing import Any\n"
        "from litestar import get\n"
        "from core import Plugin, PluginMeta, Title, hookimpl\n\n"
        "@get('/', sync_to_thread=False)\n"
        "def index() -> dict[str, str]:\n"
        "    return {'served': 'yes'}\n\n"
        "class Vendor(Plugin):\n"
        f"    meta = PluginMeta(name={name!r}, version='1.0', title=Title(ja='v', en='v'){extra_meta})\n\n"
        "    @hookimpl\n"
        "    def register_routes(self) -> list[Any]:\n"
        "        return [index]\n\n"
        "plugin = Vendor()\n"
    )


BROKEN = {
    # kind: (entry point name, module source, the cause its reason must name)
    "import": (
        "bad_import",
        "raise RuntimeError('vendor bug at import')\n",
        "import failed: RuntimeError: vendor bug at import",
    ),
    "core_api": (
        "bad_core_api",
        _vendor_module("bad_core_api", ", core_api='>=2,<3'"),
        "supports core API >=2,<3, this platform provides 1.0",
    ),
    "not_a_plugin": (
        "bad_object",
        "plugin = {'name': 'bad_object'}\n",
        "entry point must name a core.Plugin instance, got dict",
    ),
    "tables": (
        "bad_tables",
        _vendor_module("bad_tables", ", tables=('bad_tables_items',)"),
        "declares tables that its models do not define: bad_tables_items",
    ),
}


class Broken(msgspec.Struct, frozen=True):
    name: str
    cause: str


@pytest.fixture(params=sorted(BROKEN))
def broken(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Broken]:
    """A vendor distribution in ``tmp_path`` whose one plugin is broken in the way the parameter names."""
    name, source, cause = BROKEN[request.param]
    module = unique_module(name)
    write_distribution(tmp_path / "site", {name: f"{module}:plugin"}, {module: source})
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    try:
        yield Broken(name=name, cause=cause)
    finally:
        forget_modules()


@pytest.fixture
def fresh_cli_process(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Logging as a new ``tsunagu`` process finds it (structlog unconfigured); the test's own restored after.

    The CLI points logging at the captured stderr, which is closed when the test ends: the root handlers and
    the structlog configuration are put back before that.
    """
    root = logging.getLogger()
    handlers, level, config = root.handlers[:], root.level, structlog.get_config()
    structlog.reset_defaults()
    monkeypatch.setattr(core.plugins.loader, "log", structlog.get_logger(core.plugins.loader.__name__))
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        structlog.configure(**config)


@sqlite_only
async def test_broken_plugin_is_left_out_and_the_rest_keep_serving(
    broken: Broken, make_platform: MakePlatform
) -> None:
    platform = await make_platform()
    assert broken.cause in platform.plugins.broken[broken.name]
    assert broken.name not in platform.plugins.plugins
    assert platform.plugins.pm.get_plugin(broken.name) is None
    assert {"notices", "opinion_box"} <= set(platform.plugins.plugins)

    message = await refused(platform, service.set_plugin_enabled(platform, "miki", broken.name, True))
    assert message.startswith(f"miki: plugins.{broken.name}: plugin is broken: ")
    assert broken.cause in message

    app = create_app(platform=platform, run_jobs_in_process=False)
    assert not [r.path for r in app.routes if r.path.startswith(f"/{broken.name}")]
    async with lifespan_client(app) as client:
        assert (await client.get("/readyz")).json() == {"status": "ok", "database": "ok", "broker": "ok"}
        assert (await client.get("/m/miki/notices/")).status_code == 200
        sent = await client.post("/m/miki/opinion_box/", json={"topic": "t", "body": "b"})
        assert sent.status_code == 201
        assert_problem(await client.get(f"/m/miki/{broken.name}/"), 404)


@sqlite_only
def test_cli_lists_a_broken_plugin_and_refuses_to_enable_it(
    broken: Broken,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    fresh_cli_process: None,
) -> None:
    before = asyncio.run(_state_of(database_url, apply_manifests=True))
    monkeypatch.setenv("TSUNAGU_DATABASE_URL", database_url)
    capsys.readouterr()

    assert cli.main(["plugin", "list", "--json"]) == 0
    out, err = capsys.readouterr()
    listed = json.loads(out)  # stdout is the JSON document alone: the broken plugin's log line goes to stderr
    assert "plugin.broken" in err and broken.name in err
    [entry] = [b for b in listed["broken"] if b["name"] == broken.name]
    assert broken.cause in entry["reason"]
    assert broken.name not in {p["name"] for p in listed["plugins"]}
    notices = {p["name"]: p for p in listed["plugins"]}["notices"]
    assert sorted(notices["enabled_for"]) == SLUGS

    assert cli.main(["plugin", "enable", broken.name, "-m", "miki"]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith(f"error: miki: plugins.{broken.name}: plugin is broken: ")
    assert broken.cause in last
    assert asyncio.run(_state_of(database_url)) == before


async def _state_of(database_url: str, *, apply_manifests: bool = False) -> DbState:
    platform = create_platform(settings_for(database_url))
    try:
        if apply_manifests:
            await _prepare(platform)
        return await db_state(platform)
    finally:
        await platform.close()


# --- throwaway plugins for the hook tests -------------------------------------------------------------------


class Recorder(Plugin):
    """Remembers every request it is told about."""

    meta = PluginMeta(name="recorder", version="1.0", title=TITLE)

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str]] = []

    @hookimpl
    def on_request_bound(self, municipality: Municipality, path: str, method: str) -> None:
        self.seen.append((municipality.slug, method, path))


class Boom(Exception):
    """The answerer plugin's own exception type."""


class Answerer(Plugin):
    """Presents :class:`Boom` as a 409 problem of its own type; leaves everything else to the core."""

    meta = PluginMeta(name="answerer", version="1.0", title=TITLE)

    def __init__(self) -> None:
        self.asked: list[str] = []

    @hookimpl
    def problem_for_exception(
        self, exception: BaseException, municipality: Municipality | None
    ) -> Problem | None:
        self.asked.append(municipality.slug if municipality else "-")
        if isinstance(exception, Boom):
            return Problem(
                type=problem_type("boom"), title="Boom", status=409, detail="the answerer explains"
            )
        return None


class ThrowerController(Controller):
    path = "/"

    @get("/boom", sync_to_thread=False)
    def boom(self) -> dict[str, str]:
        raise Boom("boom internals: table t_secret")

    @get("/crash", sync_to_thread=False)
    def crash(self) -> dict[str, str]:
        raise RuntimeError("connection to db://admin:hunter2@10.0.0.5 lost")

    @get("/fine", sync_to_thread=False)
    def fine(self) -> dict[str, str]:
        return {"fine": "yes"}


class Thrower(Plugin):
    meta = PluginMeta(name="thrower", version="1.0", title=TITLE)

    @hookimpl
    def register_routes(self) -> list[Any]:
        return [ThrowerController]


def listener(name: str, calls: list[tuple[str, ...]]) -> Plugin:
    """A plugin that notes every enablement change it is told about."""

    class Listener(Plugin):
        meta = PluginMeta(name=name, version="1.0", title=TITLE)

        @hookimpl
        def on_plugin_enabled(self, municipality: Municipality, plugin_name: str, settings: Any) -> None:
            calls.append((name, "enabled", municipality.slug, plugin_name, type(settings).__name__))

        @hookimpl
        def on_plugin_disabled(self, municipality: Municipality, plugin_name: str) -> None:
            calls.append((name, "disabled", municipality.slug, plugin_name))

    return Listener()


class Grumpy(Plugin):
    """Raises in every notification-style hook."""

    meta = PluginMeta(name="grumpy", version="1.0", title=TITLE)

    def __init__(self, calls: list[tuple[str, ...]]) -> None:
        self.calls = calls

    @hookimpl
    def on_plugin_enabled(self, municipality: Municipality, plugin_name: str, settings: Any) -> None:
        self.calls.append(("grumpy", "enabled", municipality.slug, plugin_name))
        raise RuntimeError("grumpy refuses to hear about it")

    @hookimpl
    def on_request_bound(self, municipality: Municipality, path: str, method: str) -> None:
        self.calls.append(("grumpy", "request", municipality.slug, path))
        raise RuntimeError("grumpy refuses the request")


# --- hooks reach only the plugins enabled for the municipality at hand --------------------------------------


@sqlite_only
async def test_hook_on_request_bound(make_platform: MakePlatform) -> None:
    recorder = Recorder()
    platform = await make_platform(recorder)
    await service.set_plugin_enabled(platform, "miki", "recorder", True)
    async with serving(platform) as client:
        assert (await client.get("/m/miki/notices/")).status_code == 200
        assert (await client.get("/m/sanuki/notices/")).status_code == 200
        assert (await client.get("/readyz")).status_code == 200
        assert (await client.get("/", headers={"host": "miki.localhost"})).status_code == 200
        assert recorder.seen == [("miki", "GET", "/notices/"), ("miki", "GET", "/")]

        recorder.seen.clear()
        await service.set_plugin_enabled(platform, "sanuki", "recorder", True)
        await service.set_plugin_enabled(platform, "miki", "recorder", False)
        await client.get("/m/miki/notices/")
        await client.post("/m/sanuki/notices/")
        assert recorder.seen == [("sanuki", "POST", "/notices/")]


@sqlite_only
async def test_hook_problem_for_exception(make_platform: MakePlatform) -> None:
    answerer = Answerer()
    platform = await make_platform(answerer, Thrower())
    for slug in ("miki", "sanuki"):
        await service.set_plugin_enabled(platform, slug, "thrower", True)
    await service.set_plugin_enabled(platform, "miki", "answerer", True)

    async with serving(platform) as client:
        # Enabled at miki: the plugin answers for its own exception, before the core default.
        body = assert_problem(await client.get("/m/miki/thrower/boom"), 409)
        assert body == {
            "type": "urn:tsunagu:problem:boom",
            "title": "Boom",
            "status": 409,
            "detail": "the answerer explains",
            "instance": "/m/miki/thrower/boom",
        }
        # Other exceptions fall through to the core default.
        assert_problem(await client.get("/m/miki/notices/00000000-0000-0000-0000-000000000000"), 404)
        assert answerer.asked == ["miki", "miki"]

        # Not enabled at sanuki: never asked; its exception is an unknown one there.
        body = assert_problem(await client.get("/m/sanuki/thrower/boom"), 500)
        assert "boom internals" not in json.dumps(body)
        assert answerer.asked == ["miki", "miki"]

        # No stale relay after a change of enablement, either way.
        await service.set_plugin_enabled(platform, "sanuki", "answerer", True)
        await service.set_plugin_enabled(platform, "miki", "answerer", False)
        assert_problem(await client.get("/m/sanuki/thrower/boom"), 409)
        assert_problem(await client.get("/m/miki/thrower/boom"), 500)
        assert answerer.asked == ["miki", "miki", "sanuki"]

    miki, sanuki = platform.municipality("miki"), platform.municipality("sanuki")
    assert platform.hooks(sanuki).problem_for_exception(exception=Boom(), municipality=sanuki).status == 409
    assert platform.hooks(miki).problem_for_exception(exception=Boom(), municipality=miki).status == 500


@sqlite_only
async def test_unknown_exception_is_a_500_problem_that_does_not_leak_its_text(
    make_platform: MakePlatform, monkeypatch: pytest.MonkeyPatch
) -> None:
    platform = await make_platform(Thrower())
    await service.set_plugin_enabled(platform, "miki", "thrower", True)
    async with serving(platform) as client:
        with captured_logs(monkeypatch, core.defaults) as logs:
            response = await client.get("/m/miki/thrower/crash")
        body = assert_problem(response, 500)
        assert body == {
            "title": "Internal error",
            "status": 500,
            "instance": "/m/miki/thrower/crash",
            "detail": "The server could not complete the request.",
        }
        assert "hunter2" not in response.text and "RuntimeError" not in response.text
        unhandled = [e for e in logs if e["event"] == "request.unhandled_exception"]
        assert len(unhandled) == 1  # the operator still sees it, in the log
        assert isinstance(unhandled[0]["exc_info"], RuntimeError)
        assert (await client.get("/m/miki/thrower/fine")).json() == {"fine": "yes"}


@sqlite_only
async def test_hook_on_plugin_enabled(make_platform: MakePlatform) -> None:
    calls: list[tuple[str, ...]] = []
    platform = await make_platform(listener("listener", calls), listener("elsewhere", calls), Recorder())
    await service.set_plugin_enabled(platform, "sanuki", "elsewhere", True)
    calls.clear()

    await service.set_plugin_enabled(platform, "miki", "listener", True)  # the newly enabled one is told too
    await service.set_plugin_enabled(platform, "miki", "recorder", True)
    assert calls == [
        ("listener", "enabled", "miki", "listener", "NoSettings"),
        ("listener", "enabled", "miki", "recorder", "NoSettings"),
    ]

    calls.clear()
    assert await service.set_plugin_enabled(platform, "miki", "recorder", True) is None  # no change, no news
    assert calls == []


@sqlite_only
async def test_hook_on_plugin_disabled(make_platform: MakePlatform) -> None:
    calls: list[tuple[str, ...]] = []
    platform = await make_platform(listener("listener", calls), listener("elsewhere", calls), Recorder())
    for slug, name in (("miki", "listener"), ("miki", "recorder"), ("sanuki", "elsewhere")):
        await service.set_plugin_enabled(platform, slug, name, True)
    calls.clear()

    await service.set_plugin_enabled(platform, "miki", "recorder", False)
    await service.set_plugin_enabled(platform, "miki", "listener", False)  # the one switched off is told too
    assert calls == [
        ("listener", "disabled", "miki", "recorder"),
        ("listener", "disabled", "miki", "listener"),
    ]

    calls.clear()
    await service.set_plugin_enabled(platform, "miki", "opinion_box", False)  # nobody listening at miki now
    assert calls == []


# --- a plugin raising in a notification-style hook is logged and does not fail the caller -------------------


@sqlite_only
async def test_hook_on_plugin_enabled_raising_is_logged_and_the_change_commits(
    make_platform: MakePlatform, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[str, ...]] = []
    # Registered last, called first: the listener is told after grumpy has raised.
    platform = await make_platform(listener("listener", calls), Grumpy(calls))
    await service.set_plugin_enabled(platform, "miki", "listener", True)
    calls.clear()

    with captured_logs(monkeypatch, core.plugins.manager) as logs:
        change = await service.set_plugin_enabled(platform, "miki", "grumpy", True)

    assert change is not None and change.describe() == "miki: enable grumpy"
    assert calls == [
        ("grumpy", "enabled", "miki", "grumpy"),
        ("listener", "enabled", "miki", "grumpy", "NoSettings"),
    ]
    failures = [(e["plugin"], e["hook"], e["log_level"]) for e in logs if e["event"] == "plugin.hook_failed"]
    assert failures == [("grumpy", "on_plugin_enabled", "error")]
    assert platform.is_enabled(platform.municipality("miki"), "grumpy")
    miki_id = platform.municipality("miki").id
    assert (miki_id, "grumpy", True, "{}") in (await db_state(platform)).enablements
    fresh = create_platform(platform.settings, extra_plugins=[listener("listener", []), Grumpy([])])
    try:  # a process started now finds it enabled: the change was committed
        await fresh.refresh(force=True)
        assert fresh.is_enabled(fresh.municipality("miki"), "grumpy")
    finally:
        await fresh.close()


@sqlite_only
async def test_hook_on_request_bound_raising_is_logged_and_the_request_succeeds(
    make_platform: MakePlatform, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[str, ...]] = []
    recorder = Recorder()
    platform = await make_platform(recorder, Grumpy(calls))  # grumpy registered last: it raises first
    for name in ("recorder", "grumpy"):
        await service.set_plugin_enabled(platform, "miki", name, True)
    calls.clear()
    async with serving(platform) as client:
        with captured_logs(monkeypatch, core.plugins.manager) as logs:
            response = await client.get("/m/miki/notices/")
        assert response.status_code == 200 and response.json()["page"] == 1
        assert calls == [("grumpy", "request", "miki", "/notices/")]
        assert recorder.seen == [("miki", "GET", "/notices/")]
        failures = [(e["plugin"], e["hook"]) for e in logs if e["event"] == "plugin.hook_failed"]
        assert failures == [("grumpy", "on_request_bound")]


# --- enabling checks dependencies and settings; a refusal changes nothing -----------------------------------


class NeedsNotices(Plugin):
    meta = PluginMeta(name="needs_notices", version="1.0", title=TITLE, requires={"notices": ">=0.1"})


class NeedsNewNotices(Plugin):
    meta = PluginMeta(name="needs_new_notices", version="1.0", title=TITLE, requires={"notices": ">=9"})


class TokenSettings(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    token: str
    """The key the vendor's service gave this town."""
    retries: int = 3
    """Attempts before giving up (0 to 10)."""

    def __post_init__(self) -> None:
        if not 0 <= self.retries <= 10:
            raise ValueError(f"retries must be between 0 and 10, got {self.retries}")


class Tokened(Plugin):
    meta = PluginMeta(name="tokened", version="1.0", title=TITLE, settings=TokenSettings)


async def test_dependency_must_be_enabled_in_the_same_municipality(make_platform: MakePlatform) -> None:
    platform = await make_platform(NeedsNotices())
    await service.set_plugin_enabled(platform, "sanuki", "notices", False)

    message = await refused(platform, service.set_plugin_enabled(platform, "sanuki", "needs_notices", True))
    assert message == (
        "sanuki: plugins.needs_notices: requires plugin notices to be enabled for sanuki as well"
    )

    assert await service.set_plugin_enabled(platform, "miki", "needs_notices", True) is not None
    assert platform.is_enabled(platform.municipality("miki"), "needs_notices")

    message = await refused(platform, service.set_plugin_enabled(platform, "miki", "notices", False))
    assert message == "miki: plugins.notices: plugin needs_notices requires it; disable needs_notices first"

    await service.set_plugin_enabled(platform, "miki", "needs_notices", False)
    await service.set_plugin_enabled(platform, "miki", "notices", False)
    assert not platform.is_enabled(platform.municipality("miki"), "notices")


@sqlite_only
async def test_dependency_version_must_match(make_platform: MakePlatform) -> None:
    platform = await make_platform(NeedsNewNotices())
    message = await refused(platform, service.set_plugin_enabled(platform, "miki", "needs_new_notices", True))
    assert message == "miki: plugins.needs_new_notices: requires notices >=9, installed is 0.1.0"


@sqlite_only
async def test_unknown_plugin_cannot_be_enabled(make_platform: MakePlatform) -> None:
    platform = await make_platform()
    message = await refused(platform, service.set_plugin_enabled(platform, "miki", "no_such_plugin", True))
    assert message.startswith("miki: plugins.no_such_plugin: no such plugin is installed")


async def test_invalid_settings_are_refused_naming_the_key_and_the_rule(make_platform: MakePlatform) -> None:
    platform = await make_platform(Tokened(), Recorder())
    miki = platform.municipality("miki")

    message = await refused(platform, service.set_plugin_enabled(platform, "miki", "tokened", True))
    assert message == "miki: plugins.tokened.token: required setting is missing"
    message = await refused(platform, service.configure_plugin(platform, "miki", "tokened", {"token": 7}))
    assert message == "miki: plugins.tokened.token: Expected `str`, got `int`"
    message = await refused(
        platform, service.configure_plugin(platform, "miki", "tokened", {"token": "k", "retries": 11})
    )
    assert message == "miki: plugins.tokened.retries: must be between 0 and 10, got 11"
    message = await refused(
        platform, service.configure_plugin(platform, "miki", "tokened", {"token": "k", "colour": "red"})
    )
    assert message == "miki: plugins.tokened.colour: unknown setting for plugin tokened"
    message = await refused(platform, service.configure_plugin(platform, "miki", "notices", {"page_size": 0}))
    assert message == "miki: plugins.notices.page_size: must be between 1 and 100, got 0"
    message = await refused(
        platform, service.configure_plugin(platform, "miki", "opinion_box", {"reply_days": "2w"})
    )
    assert message == "miki: plugins.opinion_box.reply_days: Expected `int`, got `str`"
    message = await refused(platform, service.configure_plugin(platform, "miki", "recorder", {"x": 1}))
    assert message == "miki: plugins.recorder.x: unknown setting for plugin recorder"

    await service.configure_plugin(platform, "miki", "tokened", {"token": "k"})
    await service.set_plugin_enabled(platform, "miki", "tokened", True)
    assert platform.plugin_settings(miki, "tokened") == TokenSettings(token="k")


@sqlite_only
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(page_size=st.integers(min_value=-1000, max_value=1000))
async def test_notices_page_size_is_taken_only_within_its_range(platform: Platform, page_size: int) -> None:
    miki = platform.municipality("miki")
    if 1 <= page_size <= 100:
        await service.configure_plugin(platform, "miki", "notices", {"page_size": page_size})
        assert platform.plugin_settings(miki, "notices").page_size == page_size
    else:
        current = platform.plugin_settings(miki, "notices")
        message = await refused(
            platform, service.configure_plugin(platform, "miki", "notices", {"page_size": page_size})
        )
        assert message == f"miki: plugins.notices.page_size: must be between 1 and 100, got {page_size}"
        assert platform.plugin_settings(miki, "notices") == current
