"""Preparing each side's database before its server starts: municipalities, keys, seed rows, tables."""

from __future__ import annotations

import importlib
import time
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from bench.databases import platform_settings
from bench.load import Request
from bench.scenarios.base import Scenario
from core.db.engine import create_engine
from core.platform import create_platform
from core.settings import PROJECT_ROOT
from core.tenancy import service
from core.tenancy.manifest import Manifest, PluginEntry, load_manifests

REGION = sorted((PROJECT_ROOT / "municipalities").glob("*.toml"))
"""The region's own manifests (the eight members)."""


def region_manifests() -> tuple[list[Manifest], list[str]]:
    return load_manifests(REGION), [str(p) for p in REGION]


def with_plugins(manifest: Manifest, plugins: Mapping[str, Mapping[str, Any]]) -> Manifest:
    """``manifest`` with every plugin of ``plugins`` enabled: the scenario's settings over the manifest's own
    (a booking run needs a window and monthly allowance that fit its fixed number of bookings)."""
    wanted: dict[str, PluginEntry] = {}
    for name, settings in plugins.items():
        entry = manifest.plugins.get(name)
        own = entry.settings if entry is not None and entry.enabled else {}
        entry = PluginEntry(enabled=True, settings={**own, **settings})
        if entry != manifest.plugins.get(name):
            wanted[name] = entry
    return msgspec.structs.replace(manifest, plugins={**manifest.plugins, **wanted}) if wanted else manifest


async def prepare_platform(
    url: str, manifests: Sequence[Manifest], sources: Sequence[str], scenario: Scenario, total: int
) -> tuple[list[Request], float]:
    """Apply ``manifests`` (with the scenario's plugins enabled) and let the scenario prepare its data.

    Returns the request templates, spread over the applied municipalities in id order, and the seconds the
    apply took.
    """
    manifests = [with_plugins(m, scenario.plugins) for m in manifests]
    platform = create_platform(platform_settings(url))
    try:
        await platform.refresh(force=True)
        started = time.perf_counter()
        await service.apply_manifests(platform, manifests, list(sources))
        applied = time.perf_counter() - started
        await platform.refresh(force=True)
        slugs = {m.slug for m in manifests}
        municipalities = sorted(
            (m for m in platform.snapshot.by_id.values() if m.slug in slugs), key=lambda m: m.id
        )
        templates = await scenario.platform_requests(platform, municipalities, total)
    finally:
        await platform.close()
    return templates, applied


async def prepare_reference(url: str, scenario: Scenario, total: int) -> list[Request]:
    """Create the reference's tables and let the scenario seed them."""
    module = importlib.import_module(scenario.reference_module)
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(module.METADATA.create_all)
        return await scenario.reference_requests(engine, total)
    finally:
        await engine.dispose()
