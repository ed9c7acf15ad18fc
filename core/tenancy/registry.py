"""The in-memory snapshot of tenants and what each runs, rebuilt whenever the database revision moves.

Each process keeps one snapshot and checks the revision every ``refresh_interval`` seconds, so a change made by
any process (the CLI, another app server) is seen everywhere within a second, without a restart. The snapshot is
immutable: a request holds the one it started with.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from core.identity.config import DEFAULT_AUTH, AuthConfig


class Municipality(msgspec.Struct, kw_only=True, frozen=True):
    """A tenant as the running code sees it (read-only)."""

    id: int
    slug: str
    code: str
    name: str
    name_en: str
    hosts: tuple[str, ...]
    timezone: str
    locale: str
    auth: AuthConfig = DEFAULT_AUTH


class TenantSnapshot(msgspec.Struct, kw_only=True, frozen=True):
    revision: int
    by_id: Mapping[int, Municipality]
    by_slug: Mapping[str, Municipality]
    by_host: Mapping[str, Municipality]
    enabled: Mapping[int, frozenset[str]]
    """Plugins enabled per municipality id (loaded plugins only)."""
    settings: Mapping[tuple[int, str], Any]
    """Validated settings per (municipality id, plugin)."""
    grants: Mapping[int, Mapping[str, frozenset[str]]] = msgspec.field(default_factory=dict)
    """Permissions a municipality gives roles beyond the defaults: municipality id -> role -> permissions."""

    @classmethod
    def empty(cls) -> TenantSnapshot:
        return cls(revision=-1, by_id={}, by_slug={}, by_host={}, enabled={}, settings={})

    def for_host(self, host: str) -> Municipality | None:
        """Match the Host header, with or without its port."""
        host = host.lower()
        found = self.by_host.get(host)
        if found is None and ":" in host:
            found = self.by_host.get(host.rsplit(":", 1)[0])
        return found

    def is_enabled(self, municipality_id: int, plugin: str) -> bool:
        return plugin in self.enabled.get(municipality_id, frozenset())
