"""Validating a municipality's settings for a plugin against the plugin's settings Struct."""

from __future__ import annotations

from typing import Any

import msgspec

from core.exceptions import PluginError
from core.plugins.base import Plugin
from core.tenancy.manifest import key_path_of


def validate_plugin_settings(plugin: Plugin, raw: dict[str, Any], *, where: str = "") -> Any:
    """Convert raw settings (from a manifest, the CLI or the database) to the plugin's settings Struct.

    :param where: prefix for the message, e.g. ``"municipalities/miki.toml"`` or ``"miki"``.
    :raises PluginError: naming ``where``, the key path ``plugins.<name>.<key>`` and the rule.
    """
    try:
        return msgspec.convert(raw, plugin.meta.settings)
    except msgspec.ValidationError as exc:
        path, rule = key_path_of(exc)
        key = f"plugins.{plugin.meta.name}" + (f".{path}" if path else "")
        missing = "Object missing required field" in rule
        if missing or "Object contains unknown field" in rule:  # name the key, not the table that holds it
            field = rule.split("`")[1] if "`" in rule else "?"
            key = f"{key}.{field}"
            rule = "required setting is missing" if missing else f"unknown setting for plugin {plugin.name}"
        elif not path:  # a __post_init__ rule such as "page_size must be ...": move the field into the key
            first, _, rest = rule.partition(" ")
            if first in plugin.meta.settings.__struct_fields__ and rest:
                key, rule = f"{key}.{first}", rest
        prefix = f"{where}: " if where else ""
        raise PluginError(f"{prefix}{key}: {rule}", plugin=plugin.meta.name, key=key) from exc
