"""The running platform: settings, database, plugins, and the live tenant snapshot.

One :class:`Platform` per process (app server, worker, CLI). It is built by :func:`create_platform`, never at
import time, so tests can build several side by side.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import pluggy
import structlog
from sqlalchemy import select, text
from sqlalchemy.exc import OperationalError, ProgrammingError

from core.audit.keys import AuditKeys, bind_keys
from core.db.engine import create_engine
from core.db.owner import bind_platform
from core.db.rls import ROLE_CHECK_SQL
from core.db.session import SessionFactory
from core.exceptions import DatabaseNotReady, NotFound
from core.identity.config import auth_config
from core.identity.models import PermissionGrant
from core.identity.permissions import Permission, PermissionRegistry
from core.plugins.base import Plugin
from core.plugins.loader import LoadResult, discover
from core.plugins.manager import HookRelay, PluginHost, create_plugin_manager
from core.plugins.settings import validate_plugin_settings
from core.settings import Settings, redact_url, secret_key_bytes
from core.tenancy.models import MunicipalityRow, PlatformRevisionRow, PluginEnablementRow
from core.tenancy.registry import Municipality, TenantSnapshot
from core.workflow.registry import collect_workflows, workflows_of

if TYPE_CHECKING:
    from core.audit.sealing import Sealer
    from core.jobs import JobRunner

log = structlog.get_logger(__name__)


class Platform:
    def __init__(self, settings: Settings, sessions: SessionFactory, plugins: PluginHost) -> None:
        self.settings = settings
        self.sessions = sessions
        self.engine = sessions.engine
        self.plugins = plugins
        self.snapshot = TenantSnapshot.empty()
        self._refresher: asyncio.Task[None] | None = None
        self.permissions = PermissionRegistry({})
        """Every declared permission; set by :func:`create_platform`."""
        self.jobs: JobRunner | None = None
        """Set by the app or worker that runs jobs for this platform."""
        self.audit_keys = AuditKeys(lambda: secret_key_bytes(settings))
        """The audit log's keys, derived from ``TSUNAGU_SECRET_KEY`` on first use; sessions find them by engine."""
        bind_keys(self.engine, self.audit_keys)
        bind_platform(self.engine, self)  # workflow transitions check permissions through their session
        self.workflows = workflows_of(plugins.pm)
        """Every declared workflow; collected by :func:`create_platform`."""
        self.audit_sealer: Sealer | None = None
        """Set by the app that seals the audit log in the background; stopped by :meth:`close`."""

    # --- tenants -------------------------------------------------------------------------------------------

    def municipality(self, slug: str) -> Municipality:
        """:raises NotFound: if no municipality has this slug."""
        found = self.snapshot.by_slug.get(slug)
        if found is None:
            known = ", ".join(sorted(self.snapshot.by_slug)) or "none"
            raise NotFound(f"unknown municipality {slug!r} (known: {known})")
        return found

    def is_enabled(self, municipality: Municipality, plugin: str) -> bool:
        return self.snapshot.is_enabled(municipality.id, plugin)

    def require_enabled(self, municipality: Municipality, plugin: str) -> None:
        """:raises NotFound: if the plugin is not enabled for the municipality."""
        if not self.snapshot.is_enabled(municipality.id, plugin):
            raise NotFound(f"{plugin} is not enabled for {municipality.slug}")

    def plugin_settings(self, municipality: Municipality, plugin: str) -> Any:
        """The validated settings Struct of a plugin enabled for the municipality."""
        self.require_enabled(municipality, plugin)
        return self.snapshot.settings[(municipality.id, plugin)]

    def hooks(self, municipality: Municipality | None) -> HookRelay | Any:
        """Hook callers for one municipality (its enabled plugins only), or for all plugins when ``None``."""
        if municipality is None:
            return self.plugins.all_hooks
        return self.plugins.hooks_for(self.snapshot.enabled.get(municipality.id, frozenset()))

    def notify(self, municipality: Municipality | None, hook_name: str, /, **kwargs: Any) -> None:
        """Call an ``on_*`` hook with per-plugin error isolation (see :meth:`PluginHost.notify`)."""
        enabled = None if municipality is None else self.snapshot.enabled.get(municipality.id, frozenset())
        self.plugins.notify(enabled, hook_name, **kwargs)

    # --- keeping the snapshot current ----------------------------------------------------------------------

    async def refresh(self, *, force: bool = False) -> bool:
        """Reload the snapshot if the database revision moved. Returns whether it was reloaded.

        :raises DatabaseNotReady: if the database is unreachable or not migrated.
        """
        try:
            async with self.sessions.platform() as session:
                revision = await session.scalar(
                    select(PlatformRevisionRow.revision).where(PlatformRevisionRow.id == 1)
                )
                if revision is None:
                    raise DatabaseNotReady(
                        "the database has no platform revision row: run `tsunagu db upgrade`"
                    )
                if not force and revision == self.snapshot.revision:
                    return False
                rows = (await session.scalars(select(MunicipalityRow).order_by(MunicipalityRow.id))).all()
                enablements = (await session.scalars(select(PluginEnablementRow))).all()
                grants = (await session.scalars(select(PermissionGrant))).all()
        except (OperationalError, ProgrammingError) as exc:
            raise DatabaseNotReady(
                f"database {redact_url(self.settings.database_url)} is not ready ({type(exc.orig).__name__}): "
                "run `tsunagu db upgrade`"
            ) from exc
        self.snapshot = self._build_snapshot(revision, rows, enablements, grants)
        log.debug("tenants.reloaded", revision=revision, municipalities=len(rows))
        return True

    def _build_snapshot(
        self,
        revision: int,
        rows: Iterable[MunicipalityRow],
        enablements: Iterable[PluginEnablementRow],
        grants: Iterable[PermissionGrant],
    ) -> TenantSnapshot:
        by_id = {
            r.id: Municipality(
                id=r.id,
                slug=r.slug,
                code=r.code,
                name=r.name,
                name_en=r.name_en,
                hosts=tuple(r.hosts),
                timezone=r.timezone,
                locale=r.locale,
                auth=auth_config(r.auth),
            )
            for r in rows
        }
        enabled: dict[int, set[str]] = {mid: set() for mid in by_id}
        settings: dict[tuple[int, str], Any] = {}
        for row in enablements:
            plugin = self.plugins.plugins.get(row.plugin)
            if not row.enabled or plugin is None or row.municipality_id not in by_id:
                continue
            try:
                settings[(row.municipality_id, row.plugin)] = validate_plugin_settings(plugin, row.settings)
            except Exception as exc:  # stored settings a newer plugin version no longer accepts
                log.error(
                    "plugin.settings_invalid",
                    plugin=row.plugin,
                    municipality=row.municipality_id,
                    error=str(exc),
                )
                continue
            enabled[row.municipality_id].add(row.plugin)
        granted: dict[int, dict[str, set[str]]] = {}
        for grant in grants:
            granted.setdefault(grant.municipality_id, {}).setdefault(grant.role, set()).add(grant.permission)
        return TenantSnapshot(
            revision=revision,
            grants={mid: {role: frozenset(p) for role, p in roles.items()} for mid, roles in granted.items()},
            by_id=by_id,
            by_slug={m.slug: m for m in by_id.values()},
            by_host={h: m for m in by_id.values() for h in m.hosts},
            enabled={mid: frozenset(names) for mid, names in enabled.items()},
            settings=settings,
        )

    async def start_refresher(self) -> None:
        """Poll the revision in the background so other processes' changes arrive within a second."""
        await self.refresh(force=True)
        if self._refresher is None:
            self._refresher = asyncio.create_task(self._refresh_forever(), name="tsunagu-tenant-refresher")

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.refresh_interval)
            try:
                await self.refresh()
            except Exception:  # keep serving on the last good snapshot; the database may come back
                log.warning("tenants.refresh_failed", exc_info=True)

    async def check_database_role(self) -> None:
        """Warn when PostgreSQL row-level security would be bypassed by the role we connect as."""
        if self.engine.dialect.name != "postgresql":
            return
        async with self.engine.connect() as conn:
            bypasses = (await conn.execute(text(ROLE_CHECK_SQL))).scalar()
        if bypasses:
            log.warning(
                "database.role_bypasses_rls",
                detail="the database role is a superuser or has BYPASSRLS; row-level security is not enforced",
            )

    async def ping_database(self) -> None:
        """:raises sqlalchemy.exc.DBAPIError: if the database does not answer."""
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def close(self) -> None:
        if self.audit_sealer is not None:
            await self.audit_sealer.stop()
            self.audit_sealer = None
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
            self._refresher = None
        await self.sessions.dispose()


def create_platform(
    settings: Settings, *, extra_plugins: Iterable[Plugin] = (), use_entry_points: bool = True
) -> Platform:
    """Load plugins and build a :class:`Platform`. Call :meth:`Platform.refresh` (or start the app) to load tenants."""
    from core.defaults import DEFAULT_PLUGINS

    loaded = discover(extra_plugins, use_entry_points=use_entry_points)
    pm = create_plugin_manager(loaded, DEFAULT_PLUGINS)
    permissions = collect_permissions(pm, loaded)
    if collect_workflows(pm, loaded, permissions).broken:  # a plugin left out takes its permissions along
        permissions = collect_permissions(pm, loaded)
    engine = create_engine(settings.database_url)
    platform = Platform(settings, SessionFactory(engine), PluginHost(pm, loaded))
    platform.permissions = permissions
    return platform


def collect_permissions(pm: pluggy.PluginManager, loaded: LoadResult) -> PermissionRegistry:
    """Every plugin's declared permissions; a plugin that declares them wrongly is left out as broken."""
    declared: dict[str, list[Permission]] = {}
    for impl in pm.hook.register_permissions.get_hookimpls():
        owner = impl.plugin_name
        try:
            permissions = list(impl.function() or [])
            PermissionRegistry({owner: permissions})
        except Exception as exc:
            if owner not in loaded.plugins:  # the core's own declarations must be right
                raise
            loaded.broken[owner] = f"register_permissions: {exc}"
            del loaded.plugins[owner]
            pm.unregister(name=owner)
            log.error("plugin.broken", plugin=owner, reason=loaded.broken[owner])
            continue
        declared[owner] = permissions
    return PermissionRegistry(declared)
