"""Finding plugins: the ``tsunagu.plugins`` entry point group, built-in and vendor packages alike.

A plugin that fails to import, is not a :class:`~core.plugins.base.Plugin`, declares itself wrongly, or
supports another core API version is recorded as *broken* with the reason; loading goes on with the rest.
"""

from __future__ import annotations

import importlib
import traceback
from collections.abc import Iterable
from importlib.metadata import EntryPoint, entry_points

import msgspec
import structlog

from core.db.base import Base
from core.plugins.base import CORE_API_VERSION, Plugin

ENTRY_POINT_GROUP = "tsunagu.plugins"

log = structlog.get_logger(__name__)


class LoadResult(msgspec.Struct, kw_only=True):
    plugins: dict[str, Plugin] = msgspec.field(default_factory=dict)
    broken: dict[str, str] = msgspec.field(default_factory=dict)
    """Plugin name -> one-line reason it was left out."""
    origins: dict[str, str] = msgspec.field(default_factory=dict)
    """Plugin name -> where it came from (entry point value or 'extra')."""


def discover(extra: Iterable[Plugin] = (), use_entry_points: bool = True) -> LoadResult:
    """Load every plugin from the entry point group, then ``extra`` (tests, embedding)."""
    result = LoadResult()
    if use_entry_points:
        for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            _load_entry_point(ep, result)
    for plugin in extra:
        _accept(plugin, f"{type(plugin).__module__}.{type(plugin).__name__}", result, expected_name=None)
    return result


def _load_entry_point(ep: EntryPoint, result: LoadResult) -> None:
    try:
        obj = ep.load()
    except Exception as exc:  # a broken vendor package must not stop the platform
        reason = f"import failed: {type(exc).__name__}: {exc}"
        result.broken[ep.name] = reason
        log.error("plugin.broken", plugin=ep.name, reason=reason, traceback=traceback.format_exc(limit=3))
        return
    _accept(obj, ep.value, result, expected_name=ep.name)


def _accept(obj: object, origin: str, result: LoadResult, expected_name: str | None) -> None:
    name = expected_name or getattr(getattr(obj, "meta", None), "name", origin)
    reason = _problem_with(obj, expected_name)
    if reason is None and name in result.plugins:
        reason = f"another plugin named {name!r} is already loaded from {result.origins[name]}"
        name = f"{name} ({origin})"  # the loaded one keeps the name; the impostor is listed under its origin
    if reason is not None:
        result.broken[name] = reason
        log.error("plugin.broken", plugin=name, reason=reason, origin=origin)
        return
    assert isinstance(obj, Plugin)
    result.plugins[name] = obj
    result.origins[name] = origin


def _problem_with(obj: object, expected_name: str | None) -> str | None:
    if not isinstance(obj, Plugin):
        return f"entry point must name a core.Plugin instance, got {type(obj).__name__}"
    try:
        meta = type(obj).meta
    except AttributeError:
        return "plugin class has no meta"
    if expected_name is not None and meta.name != expected_name:
        return f"entry point name {expected_name!r} differs from the plugin's own name {meta.name!r}"
    if not meta.supports_core():
        return f"supports core API {meta.core_api}, this platform provides {CORE_API_VERSION}"
    for module in meta.models:
        try:
            importlib.import_module(module)
        except Exception as exc:
            return f"models module {module} failed to import: {type(exc).__name__}: {exc}"
    missing = [t for t in meta.tables if t not in Base.metadata.tables]
    if missing:
        return f"declares tables that its models do not define: {', '.join(missing)}"
    return None
