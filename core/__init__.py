"""tsunagu core: tenancy, plugins, database, HTTP app. Plugins import what they need from here."""

from core.markers import hookimpl, hookspec
from core.plugins.base import CORE_API_VERSION, NoSettings, Plugin, PluginMeta, Title

__all__ = ["CORE_API_VERSION", "NoSettings", "Plugin", "PluginMeta", "Title", "hookimpl", "hookspec"]
