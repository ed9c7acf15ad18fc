"""What plugins contribute to notifications (channels, template folders), collected once per set of plugins.

The hooks are start-up hooks: every loaded plugin is asked once, and a plugin whose hook raises or returns
something wrong is logged and left out (the others keep working). A channel is used for a municipality only
while its plugin is enabled there.
"""

from __future__ import annotations

import threading
import weakref
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from core.notifications.channels import CHANNEL_NAME, CORE_CHANNELS, Channel
from core.notifications.templates import TemplateLibrary

if TYPE_CHECKING:
    from core.platform import Platform
    from core.plugins.manager import PluginHost
    from core.tenancy.registry import Municipality

log = structlog.get_logger(__name__)


class Contributions:
    def __init__(
        self, channels: dict[str, tuple[str, Channel]], template_dirs: list[tuple[str, Path]]
    ) -> None:
        self.channels = channels
        """channel name -> (plugin, channel)"""
        self.template_dirs = template_dirs


_collected: weakref.WeakKeyDictionary[PluginHost, Contributions] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def contributions(platform: Platform) -> Contributions:
    """The plugins' channels and template folders (asked once per plugin host: app and job platforms share it)."""
    host = platform.plugins
    with _lock:
        found = _collected.get(host)
        if found is None:
            found = _collected[host] = _collect(host)
    return found


def _collect(host: PluginHost) -> Contributions:
    channels: dict[str, tuple[str, Channel]] = {}
    for impl in host.pm.hook.register_notification_channels.get_hookimpls():
        plugin = impl.plugin_name
        try:
            offered = list(impl.function() or [])
        except Exception:
            log.exception("plugin.hook_failed", plugin=plugin, hook="register_notification_channels")
            continue
        for channel in offered:
            name = getattr(channel, "name", None)
            problem = None
            if not isinstance(channel, Channel):
                problem = "not a core.notifications.Channel"
            elif not isinstance(name, str) or not CHANNEL_NAME.fullmatch(name):
                problem = f"channel name must be lowercase letters, digits and '_', got {name!r}"
            elif name in CORE_CHANNELS or name in channels:
                problem = f"channel name {name!r} is taken"
            if problem is not None:
                log.error("plugin.channel_invalid", plugin=plugin, channel=repr(channel), reason=problem)
                continue
            channels[name] = (plugin, channel)
    template_dirs: list[tuple[str, Path]] = []
    for impl in host.pm.hook.register_notification_templates.get_hookimpls():
        plugin = impl.plugin_name
        try:
            folders = [Path(p) for p in impl.function() or []]
        except Exception:
            log.exception("plugin.hook_failed", plugin=plugin, hook="register_notification_templates")
            continue
        template_dirs.extend((plugin, folder) for folder in folders)
    return Contributions(channels, template_dirs)


def channels_for(platform: Platform, municipality: Municipality) -> dict[str, Channel]:
    """Plugin channels usable in ``municipality``: those whose plugin is enabled there."""
    return {
        name: channel
        for name, (plugin, channel) in contributions(platform).channels.items()
        if platform.is_enabled(municipality, plugin)
    }


def template_library(platform: Platform) -> TemplateLibrary:
    return TemplateLibrary(Path(platform.settings.municipalities_dir), contributions(platform).template_dirs)
