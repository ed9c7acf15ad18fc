"""Guards the core puts on every plugin's routes."""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler

from core.exceptions import NotFound


def plugin_enabled_guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """A plugin's routes exist for a municipality only while the plugin is enabled there: otherwise 404."""
    plugin = handler.opt.get("plugin")
    municipality = connection.scope.get("state", {}).get("municipality")
    platform = connection.app.state.platform
    if plugin is None:
        return
    if municipality is None or not platform.snapshot.is_enabled(municipality.id, plugin):
        raise NotFound(f"no such resource: {connection.url.path}")
