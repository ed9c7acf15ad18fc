"""What a plugin declares (``core.plugins.base``) and how plugins are found (``core.plugins.loader``).

A plugin that fails to import, is not a ``core.Plugin``, declares itself wrongly or supports another core API
is reported with the reason and left out; the others load.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from packaging.version import Version

import core.plugins.loader
from core import CORE_API_VERSION, Plugin, PluginMeta, Title
from core.exceptions import ImproperlyConfigured
from core.plugins.loader import ENTRY_POINT_GROUP, discover
from plugins.notices.config import NoticesSettings
from tests.plugin_helpers import captured_logs, forget_modules, unique_module, write_distribution

TITLE = Title(ja="試験", en="Test")
VALID_NAME = re.compile(r"[a-z][a-z0-9_]{1,39}")


def meta(**changes: object) -> PluginMeta:
    fields: dict[str, object] = {"name": "sample", "version": "1.0", "title": TITLE}
    fields.update(changes)
    return PluginMeta(**fields)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def _forget_test_modules() -> Iterator[None]:
    yield
    forget_modules()


# --- PluginMeta: validated when created ---------------------------------------------------------------------


def test_a_complete_declaration_is_accepted() -> None:
    declared = meta(
        name="booking_v2",
        version="2.1.0rc1",
        core_api=">=1.0,<2",
        requires={"notices": ">=0.1"},
        settings=NoticesSettings,
        tables=("notices",),
        migrations=str(Path(__file__).parent),
    )
    assert declared.supports_core()
    assert declared.requires == {"notices": ">=0.1"}


@given(name=st.text(alphabet="abcxyz_019A-. \n", max_size=45))
def test_plugin_names_are_lowercase_letters_digits_and_underscores(name: str) -> None:
    if VALID_NAME.fullmatch(name):
        assert meta(name=name).name == name
    else:
        with pytest.raises(ImproperlyConfigured, match="plugin name must be lowercase") as caught:
            meta(name=name)
        assert repr(name) in caught.value.detail


@pytest.mark.parametrize("name", ["notices\n", "a", "Notices", "1notices", "opinion-box", "x" * 41, ""])
def test_bad_plugin_names_are_rejected(name: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=re.escape(f"got {name!r}")):
        meta(name=name)


@pytest.mark.parametrize("version", ["", "one", "1.0-", "v 1", "1..0", "latest"])
def test_versions_must_be_pep_440(version: str) -> None:
    with pytest.raises(ImproperlyConfigured) as caught:
        meta(version=version)
    assert caught.value.detail == f"sample: version must be PEP 440, got {version!r}"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"core_api": "1.0"}, "sample: core_api must be a version specifier, got '1.0'"),
        ({"core_api": "=>1"}, "sample: core_api must be a version specifier, got '=>1'"),
        (
            {"requires": {"notices": "latest"}},
            "sample: requires.notices must be a version specifier, got 'latest'",
        ),
        ({"settings": dict}, "sample: settings must be a msgspec.Struct type, got <class 'dict'>"),
        (
            {"settings": NoticesSettings()},
            "sample: settings must be a msgspec.Struct type, got NoticesSettings(",
        ),
        (
            {"migrations": "/nonexistent/migrations"},
            "sample: migrations folder /nonexistent/migrations does not exist",
        ),
    ],
)
def test_bad_declarations_are_rejected_naming_the_field(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ImproperlyConfigured) as caught:
        meta(**changes)
    assert caught.value.detail.startswith(message)


def test_core_api_range_decides_support() -> None:
    assert CORE_API_VERSION == Version("1.0")
    assert meta(core_api=">=1.0,<2").supports_core()
    assert not meta(core_api=">=2,<3").supports_core()
    assert not meta(core_api="<1").supports_core()
    assert meta(core_api=">=2,<3").supports_core(Version("2.3"))


# --- discovery through the entry point group ---------------------------------------------------------------


def test_builtin_and_vendor_plugins_load_the_same_way() -> None:
    loaded = discover()
    assert loaded.origins["notices"] == "plugins.notices:plugin"
    assert loaded.origins["opinion_box"] == "tsunagu_opinion_box:plugin"
    import plugins.notices
    import tsunagu_opinion_box

    assert loaded.plugins["notices"] is plugins.notices.plugin
    assert loaded.plugins["opinion_box"] is tsunagu_opinion_box.plugin
    assert "notices" not in loaded.broken and "opinion_box" not in loaded.broken


def _plugin_module(name: str, **meta_fields: str) -> str:
    extra = "".join(f", {key}={value}" for key, value in meta_fields.items())
    return (
        "from core import Plugin, PluginMeta, Title\n\n"
        "class Vendor(Plugin):\n"
        f"    meta = PluginMeta(name={name!r}, version='1.0', title=Title(ja='v', en='v'){extra})\n\n"
        "plugin = Vendor()\n"
    )


BROKEN = {
    # entry point name: (module source, the reason it is left out)
    "bad_import": (
        "raise RuntimeError('vendor bug at import')\n",
        "import failed: RuntimeError: vendor bug at import",
    ),
    "bad_core_api": (
        _plugin_module("bad_core_api", core_api="'>=2,<3'"),
        "supports core API >=2,<3, this platform provides 1.0",
    ),
    "bad_object": (
        "plugin = {'name': 'bad_object'}\n",
        "entry point must name a core.Plugin instance, got dict",
    ),
    "bad_class": (
        _plugin_module("bad_class").replace("plugin = Vendor()", "plugin = Vendor"),
        "entry point must name a core.Plugin instance, got type",
    ),
    "bad_tables": (
        _plugin_module("bad_tables", tables="('bad_tables_items',)"),
        "declares tables that its models do not define: bad_tables_items",
    ),
    "bad_models": (
        _plugin_module("bad_models", models="('tsunagu_test_no_such_models',)"),
        "models module tsunagu_test_no_such_models failed to import: ModuleNotFoundError",
    ),
    "bad_alias": (
        _plugin_module("other_name"),
        "entry point name 'bad_alias' differs from the plugin's own name 'other_name'",
    ),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_vendor_plugin_is_reported_and_the_rest_load(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, reason = BROKEN[name]
    module = unique_module(name)
    write_distribution(tmp_path, {name: f"{module}:plugin"}, {module: source})
    monkeypatch.syspath_prepend(str(tmp_path))

    with captured_logs(monkeypatch, core.plugins.loader) as logs:
        loaded = discover()

    assert loaded.broken[name].startswith(reason)
    assert name not in loaded.plugins and name not in loaded.origins
    assert {"notices", "opinion_box"} <= set(loaded.plugins)
    reports = [(e["plugin"], e["reason"], e["log_level"]) for e in logs if e["event"] == "plugin.broken"]
    assert reports == [(name, loaded.broken[name], "error")]


def test_the_entry_point_group_is_the_documented_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module = unique_module("good")
    write_distribution(tmp_path, {"good_vendor": f"{module}:plugin"}, {module: _plugin_module("good_vendor")})
    monkeypatch.syspath_prepend(str(tmp_path))
    assert ENTRY_POINT_GROUP == "tsunagu.plugins"
    loaded = discover()
    assert loaded.origins["good_vendor"] == f"{module}:plugin"
    assert isinstance(loaded.plugins["good_vendor"], Plugin)
    assert "good_vendor" not in discover(use_entry_points=False).plugins


# --- plugins passed in directly (tests, embedding) ----------------------------------------------------------


class OtherCore(Plugin):
    meta = PluginMeta(name="other_core", version="1.0", title=TITLE, core_api=">=2,<3")


class MissingTables(Plugin):
    meta = PluginMeta(
        name="missing_tables", version="1.0", title=TITLE, tables=("notices", "missing_tables_x")
    )


class Fine(Plugin):
    meta = PluginMeta(
        name="fine", version="1.0", title=TITLE, tables=("notices",), models=("plugins.notices.models",)
    )


class NoMeta(Plugin):
    pass


class NotAPlugin:
    meta = PluginMeta(name="not_a_plugin", version="1.0", title=TITLE)


class Impostor(Plugin):
    meta = PluginMeta(name="notices", version="9.9", title=TITLE)


def test_extra_plugins_are_checked_like_entry_points() -> None:
    loaded = discover([OtherCore(), MissingTables(), NoMeta(), NotAPlugin(), Fine()], use_entry_points=False)
    assert set(loaded.plugins) == {"fine"}
    assert loaded.origins["fine"] == f"{__name__}.Fine"
    assert loaded.broken["other_core"] == "supports core API >=2,<3, this platform provides 1.0"
    assert loaded.broken["missing_tables"] == (
        "declares tables that its models do not define: missing_tables_x"
    )
    assert loaded.broken[f"{__name__}.NoMeta"] == "plugin class has no meta"
    assert loaded.broken["not_a_plugin"] == "entry point must name a core.Plugin instance, got NotAPlugin"


def test_a_second_plugin_with_a_taken_name_is_left_out() -> None:
    loaded = discover([Impostor()])
    import plugins.notices

    assert loaded.plugins["notices"] is plugins.notices.plugin
    assert "notices" not in loaded.broken  # the loaded one stays usable
    [(name, reason)] = [(n, r) for n, r in loaded.broken.items() if n.startswith("notices")]
    assert name.startswith("notices (") and "Impostor" in name
    assert reason == "another plugin named 'notices' is already loaded from plugins.notices:plugin"
