"""The plugin manager, and hook dispatch restricted to the plugins enabled for a municipality.

``hooks_for(enabled)`` returns a relay whose attributes are pluggy *subset hook callers* that leave out every
loaded plugin not in ``enabled``. Relays are cached by the enabled set itself, so a change of enablement needs no
explicit invalidation: the new set simply maps to another relay.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pluggy
import structlog

from core import hookspecs
from core.plugins.base import Plugin
from core.plugins.loader import LoadResult

log = structlog.get_logger(__name__)

CORE_PLUGIN_NAME = "core"


class HookRelay:
    """Attribute access to subset hook callers for one set of enabled plugins."""

    def __init__(self, pm: pluggy.PluginManager, excluded: tuple[object, ...]) -> None:
        self._pm = pm
        self._excluded = excluded

    def __getattr__(self, name: str) -> Any:
        if not hasattr(self._pm.hook, name):
            raise AttributeError(f"no hook named {name!r}")
        caller = (
            self._pm.subset_hook_caller(name, self._excluded)
            if self._excluded
            else getattr(self._pm.hook, name)
        )
        setattr(self, name, caller)  # cache: next access skips __getattr__
        return caller


def create_plugin_manager(loaded: LoadResult, default_plugins: Iterable[object] = ()) -> pluggy.PluginManager:
    """Build the pluggy manager: specs, the core's default plugins, then every loaded plugin.

    ``check_pending`` makes a misspelt hook implementation fail here, at start-up, not in production.
    """
    pm = pluggy.PluginManager("tsunagu")
    pm.add_hookspecs(hookspecs)
    for index, default in enumerate(default_plugins):
        pm.register(default, name=CORE_PLUGIN_NAME if index == 0 else f"{CORE_PLUGIN_NAME}.{index}")
    for name, plugin in loaded.plugins.items():
        pm.register(plugin, name=name)
    pm.check_pending()
    return pm


class PluginHost:
    """Loaded plugins, broken ones, and per-enabled-set hook dispatch."""

    def __init__(self, pm: pluggy.PluginManager, loaded: LoadResult) -> None:
        self.pm = pm
        self.plugins: dict[str, Plugin] = dict(loaded.plugins)
        self.broken: dict[str, str] = dict(loaded.broken)
        self.origins: dict[str, str] = dict(loaded.origins)
        self._relays: dict[frozenset[str], HookRelay] = {}

    @property
    def all_hooks(self) -> Any:
        """Every loaded plugin: for start-up hooks and for requests bound to no municipality."""
        return self.pm.hook

    def hooks_for(self, enabled: frozenset[str]) -> HookRelay:
        """Hook callers that reach only the core and the plugins in ``enabled``."""
        relay = self._relays.get(enabled)
        if relay is None:
            excluded = tuple(p for name, p in self.plugins.items() if name not in enabled)
            relay = self._relays[enabled] = HookRelay(self.pm, excluded)
        return relay

    def notify(self, enabled: frozenset[str] | None, hook_name: str, /, **kwargs: Any) -> None:
        """Call a notification-style (``on_*``) hook, one implementation at a time.

        An exception in one plugin is logged with that plugin's name and does not reach the caller or stop the
        other plugins. ``enabled=None`` means every loaded plugin.
        """
        caller = getattr(self.pm.hook, hook_name)
        for impl in reversed(caller.get_hookimpls()):
            if enabled is not None and impl.plugin_name in self.plugins and impl.plugin_name not in enabled:
                continue
            try:
                impl.function(*[kwargs[arg] for arg in impl.argnames])
            except Exception:
                log.exception("plugin.hook_failed", plugin=impl.plugin_name, hook=hook_name)
