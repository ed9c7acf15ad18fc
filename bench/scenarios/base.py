"""What an HTTP scenario provides: how to prepare each side and the requests the load generator sends.

A scenario is one module in ``bench/scenarios/`` exporting ``SCENARIO``, an instance of a :class:`Scenario`
subclass; ``bench/run`` finds it by itself. The harness gives it a migrated platform database with the
municipalities applied, and an empty reference database on the same server; it returns request templates for
each side (request ``n`` of a run is ``templates[n % len(templates)]``, so a scenario that needs every request
different, such as booking distinct slots, returns ``total`` of them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any, ClassVar

from sqlalchemy.ext.asyncio import AsyncEngine

from bench.load import Request
from bench.report import Goal
from core.db import utcnow
from core.identity.apikeys import create_api_key
from core.platform import Platform
from core.tenancy.registry import Municipality

REFERENCE_HOST = "reference.localhost"


async def api_keys(platform: Platform, municipalities: Sequence[Municipality], scope: str) -> list[str]:
    """One key per municipality with ``scope``, valid for a day."""
    expires_at = utcnow() + timedelta(days=1)
    keys = []
    for municipality in municipalities:
        _, key = await create_api_key(
            platform, municipality, name="bench", scopes=[scope], expires_at=expires_at, actor="cli"
        )
        keys.append(key)
    return keys


def host_of(municipality: Municipality) -> str:
    """:raises ValueError: if the municipality has no host (requests are bound by ``Host``)."""
    if not municipality.hosts:
        raise ValueError(f"{municipality.slug} has no host in its manifest")
    return municipality.hosts[0]


class Scenario:
    name: ClassVar[str]
    """Identifier used by ``--only`` and in ``results.json``."""
    title: ClassVar[str]
    """Shown in the table."""
    order: ClassVar[int] = 100
    """Position in the table (and in a run)."""
    plugins: ClassVar[Mapping[str, Mapping[str, Any]]] = {}
    """Plugins (name -> settings) the scenario needs enabled in every municipality it sends requests to; the
    synthetic municipalities of the scale run are made with exactly these."""
    reference_module: ClassVar[str]
    """Module of the reference app with this scenario's routes (``ROUTES``) and tables (``METADATA``)."""
    expect_status: ClassVar[int] = 200
    goals: ClassVar[Mapping[str, Goal]] = {}
    """Goals on the figures of the platform's run: ``ratio`` (to the reference), ``p50_ms``, ``p99_ms``."""

    async def platform_requests(
        self, platform: Platform, municipalities: Sequence[Municipality], total: int
    ) -> list[Request]:
        """Prepare the platform's database (keys, seed rows) and return its request templates, spread over
        ``municipalities`` (addressed by ``Host``)."""
        raise NotImplementedError

    async def reference_requests(self, engine: AsyncEngine, total: int) -> list[Request]:
        """Prepare the reference database (its tables exist already) and return its request templates."""
        raise NotImplementedError
