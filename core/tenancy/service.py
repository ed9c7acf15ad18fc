"""Changing the live tenant state: apply manifests, enable, disable and configure plugins, export.

Every change runs in one platform transaction that also bumps the platform revision, so either all of it lands
and every process reloads, or nothing does. Hooks ``on_plugin_enabled``/``on_plugin_disabled`` are told after the
commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
from packaging.specifiers import SpecifierSet
from packaging.version import Version
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.audit import record as audit_record
from core.exceptions import InvalidInput, NotFound, PluginError
from core.identity.config import DEFAULT_AUTH, auth_config
from core.identity.models import PermissionGrant
from core.platform import Platform
from core.plugins.settings import validate_plugin_settings
from core.tenancy.manifest import Manifest, PluginEntry
from core.tenancy.models import MunicipalityRow, PlatformRevisionRow, PluginEnablementRow

_FIELDS = ("name", "name_en", "code", "hosts", "timezone", "locale", "auth")


def _manifest_value(manifest: Manifest, field: str) -> Any:
    """A manifest field as it is stored in its column."""
    if field == "hosts":
        return list(manifest.hosts)
    if field == "auth":
        return None if manifest.auth == DEFAULT_AUTH else msgspec.to_builtins(manifest.auth)
    return getattr(manifest, field)


def _row_value(row: MunicipalityRow, field: str) -> Any:
    if field == "hosts":
        return list(row.hosts or ())  # a row being created has no hosts yet
    return getattr(row, field, None)


class Change(msgspec.Struct, kw_only=True, frozen=True):
    """One line of a plan: what will change, where."""

    municipality: str
    action: str
    """``create``, ``update``, ``enable``, ``disable`` or ``configure``."""
    target: str
    detail: str = ""

    def describe(self) -> str:
        return f"{self.municipality}: {self.action} {self.target}" + (
            f" ({self.detail})" if self.detail else ""
        )


def check_plugins(platform: Platform, slug: str, plugins: dict[str, PluginEntry], where: str) -> None:
    """Check a municipality's desired plugin state as a whole: known plugins, valid settings, dependencies met.

    :raises PluginError: one message naming the municipality (or file), the plugin, the key path and the rule.
    """
    host = platform.plugins
    for name, entry in sorted(plugins.items()):
        if not entry.enabled:
            continue
        if name in host.broken:
            raise PluginError(f"{where}: plugins.{name}: plugin is broken: {host.broken[name]}")
        plugin = host.plugins.get(name)
        if plugin is None:
            known = ", ".join(sorted(host.plugins)) or "none"
            raise PluginError(f"{where}: plugins.{name}: no such plugin is installed (installed: {known})")
        validate_plugin_settings(plugin, entry.settings, where=where)
        for dependency, spec in sorted(plugin.meta.requires.items()):
            needed = host.plugins.get(dependency)
            if needed is None:
                raise PluginError(
                    f"{where}: plugins.{name}: requires plugin {dependency} {spec}, which is not installed"
                )
            if not SpecifierSet(spec).contains(Version(needed.meta.version), prereleases=True):
                raise PluginError(
                    f"{where}: plugins.{name}: requires {dependency} {spec}, installed is {needed.meta.version}"
                )
            if not (dependency in plugins and plugins[dependency].enabled):
                raise PluginError(
                    f"{where}: plugins.{name}: requires plugin {dependency} to be enabled for {slug} as well"
                )


async def _load_state(session: AsyncSession, municipality_id: int) -> dict[str, PluginEntry]:
    rows = await session.scalars(
        select(PluginEnablementRow).where(PluginEnablementRow.municipality_id == municipality_id)
    )
    return {r.plugin: PluginEntry(enabled=r.enabled, settings=dict(r.settings)) for r in rows}


def check_permissions(platform: Platform, permissions: dict[str, tuple[str, ...]], where: str) -> None:
    """:raises InvalidInput: for a permission no installed plugin declares."""
    for role, names in sorted(permissions.items()):
        for index, name in enumerate(names):
            if name not in platform.permissions.permissions:
                raise InvalidInput(
                    f"{where}: permissions.{role}.{index}: no installed plugin declares {name!r}"
                )


def _grant_set(manifest: Manifest) -> set[tuple[str, str]]:
    return {(role, p) for role, names in manifest.permissions.items() for p in names}


async def _load_grants(session: AsyncSession, municipality_id: int) -> set[tuple[str, str]]:
    rows = await session.scalars(
        select(PermissionGrant).where(PermissionGrant.municipality_id == municipality_id)
    )
    return {(r.role, r.permission) for r in rows}


async def _sync_grants(session: AsyncSession, municipality_id: int, desired: set[tuple[str, str]]) -> None:
    current = await _load_grants(session, municipality_id)
    for role, permission in desired - current:
        session.add(PermissionGrant(municipality_id=municipality_id, role=role, permission=permission))
    for role, permission in current - desired:
        await session.execute(
            delete(PermissionGrant).where(
                PermissionGrant.municipality_id == municipality_id,
                PermissionGrant.role == role,
                PermissionGrant.permission == permission,
            )
        )


async def bump_revision(session: AsyncSession) -> None:
    await session.execute(
        update(PlatformRevisionRow)
        .where(PlatformRevisionRow.id == 1)
        .values(revision=PlatformRevisionRow.revision + 1)
    )


def _plugin_changes(
    slug: str, current: dict[str, PluginEntry], desired: dict[str, PluginEntry]
) -> list[Change]:
    changes = []
    for name in sorted(set(current) | set(desired)):
        before = current.get(name, PluginEntry())
        after = desired.get(name, PluginEntry(enabled=False, settings=before.settings))
        if name not in current:
            settings = ", ".join(f"{k}={v!r}" for k, v in sorted(after.settings.items()))
            changes.append(
                Change(
                    municipality=slug,
                    action="enable" if after.enabled else "add (disabled)",
                    target=name,
                    detail=settings,
                )
            )
            continue
        if before.enabled != after.enabled:
            changes.append(
                Change(municipality=slug, action="enable" if after.enabled else "disable", target=name)
            )
        if before.settings != after.settings and name in desired:
            keys = sorted(
                k
                for k in set(before.settings) | set(after.settings)
                if before.settings.get(k) != after.settings.get(k)
            )
            changes.append(Change(municipality=slug, action="configure", target=name, detail=", ".join(keys)))
    return changes


async def plan_apply(
    platform: Platform, manifests: Sequence[Manifest], sources: Sequence[str]
) -> list[Change]:
    """What :func:`apply_manifests` would change, validated; changes nothing.

    :raises InvalidInput: for a host already used by a municipality not in this apply.
    :raises PluginError: for an unknown or broken plugin, bad settings or unmet dependencies.
    """
    changes, _ = await _plan(platform, manifests, sources)
    return changes


async def _plan(
    platform: Platform, manifests: Sequence[Manifest], sources: Sequence[str]
) -> tuple[list[Change], dict[str, dict[str, PluginEntry]]]:
    changes: list[Change] = []
    current_plugins: dict[str, dict[str, PluginEntry]] = {}
    async with platform.sessions.platform() as session:
        existing = {r.slug: r for r in (await session.scalars(select(MunicipalityRow))).all()}
        applied = {m.slug for m in manifests}
        for m, source in zip(manifests, sources, strict=True):
            check_plugins(platform, m.slug, m.plugins, source)
            check_permissions(platform, m.permissions, source)
            for other in existing.values():
                if other.slug in applied:
                    continue
                if other.code == m.code:
                    raise InvalidInput(f"{source}: code: {m.code} is already used by {other.slug}")
                for index, host in enumerate(m.hosts):
                    if host in other.hosts:
                        raise InvalidInput(
                            f"{source}: hosts.{index}: {host!r} is already used by {other.slug}"
                        )
            row = existing.get(m.slug)
            if row is None:
                changes.append(
                    Change(municipality=m.slug, action="create", target="municipality", detail=m.name)
                )
                current_plugins[m.slug] = {}
                current_grants: set[tuple[str, str]] = set()
            else:
                for field in _FIELDS:
                    before = _row_value(row, field)
                    after = _manifest_value(m, field)
                    if before != after:
                        changes.append(
                            Change(
                                municipality=m.slug,
                                action="update",
                                target=field,
                                detail=f"{before!r} -> {after!r}",
                            )
                        )
                current_plugins[m.slug] = await _load_state(session, row.id)
                current_grants = await _load_grants(session, row.id)
            changes.extend(_plugin_changes(m.slug, current_plugins[m.slug], m.plugins))
            desired_grants = _grant_set(m)
            for role, permission in sorted(desired_grants - current_grants):
                changes.append(Change(municipality=m.slug, action="grant", target=f"{role} {permission}"))
            for role, permission in sorted(current_grants - desired_grants):
                changes.append(Change(municipality=m.slug, action="revoke", target=f"{role} {permission}"))
    return changes, current_plugins


async def apply_manifests(
    platform: Platform,
    manifests: Sequence[Manifest],
    sources: Sequence[str],
    *,
    dry_run: bool = False,
    actor: str = "cli",
) -> list[Change]:
    """Make the live state match ``manifests``: all of it in one transaction, or nothing.

    A plugin absent from a manifest ends up disabled (its stored settings are kept). Municipalities not named are
    left alone. Running the same apply twice changes nothing the second time. Each change is recorded in the
    audit log of its municipality, in the same transaction, as done by ``actor``.
    """
    changes, _ = await _plan(platform, manifests, sources)
    if dry_run or not changes:
        return changes
    async with platform.sessions.platform() as session:
        for m in manifests:
            row = await session.scalar(select(MunicipalityRow).where(MunicipalityRow.slug == m.slug))
            if row is None:
                row = MunicipalityRow(slug=m.slug)
                session.add(row)
            for field in _FIELDS:
                value = _manifest_value(m, field)
                if _row_value(row, field) != value:
                    setattr(row, field, value)
            await session.flush()
            stored = {
                r.plugin: r
                for r in await session.scalars(
                    select(PluginEnablementRow).where(PluginEnablementRow.municipality_id == row.id)
                )
            }
            for name in set(stored) | set(m.plugins):
                entry = m.plugins.get(name)
                record = stored.get(name)
                if record is None:
                    assert entry is not None
                    session.add(
                        PluginEnablementRow(
                            municipality_id=row.id,
                            plugin=name,
                            enabled=entry.enabled,
                            settings=dict(entry.settings),
                        )
                    )
                elif entry is None:
                    if record.enabled:
                        record.enabled = False
                else:
                    if record.enabled != entry.enabled:
                        record.enabled = entry.enabled
                    if record.settings != entry.settings:
                        record.settings = dict(entry.settings)
            await _sync_grants(session, row.id, _grant_set(m))
            _audit(session, row.id, [c for c in changes if c.municipality == m.slug], actor)
        await bump_revision(session)
    await _after_commit(platform, changes)
    return changes


async def set_plugin_enabled(
    platform: Platform, slug: str, name: str, enabled: bool, *, actor: str = "cli"
) -> Change | None:
    """Enable or disable one plugin for one municipality; ``None`` when it already was. Audited as ``actor``.

    :raises NotFound: unknown municipality.
    :raises PluginError: unknown or broken plugin, invalid stored settings, unmet dependency, or (when disabling)
        another enabled plugin that requires this one.
    """
    async with platform.sessions.platform() as session:
        row = await _municipality_row(session, slug)
        state = await _load_state(session, row.id)
        before = state.get(name, PluginEntry())
        if before.enabled == enabled:
            if name not in platform.plugins.plugins and name not in state:
                raise PluginError(f"{slug}: plugins.{name}: no such plugin is installed")
            return None
        state[name] = PluginEntry(enabled=enabled, settings=before.settings)
        if not enabled:
            for other, entry in sorted(state.items()):
                plugin = platform.plugins.plugins.get(other)
                if entry.enabled and plugin is not None and name in plugin.meta.requires:
                    raise PluginError(
                        f"{slug}: plugins.{name}: plugin {other} requires it; disable {other} first"
                    )
        check_plugins(platform, slug, state, slug)
        await _store(session, row.id, name, state[name])
        change = Change(municipality=slug, action="enable" if enabled else "disable", target=name)
        _audit(session, row.id, [change], actor)
        await bump_revision(session)
    await _after_commit(platform, [change])
    return change


async def configure_plugin(
    platform: Platform, slug: str, name: str, assignments: dict[str, Any], *, actor: str = "cli"
) -> dict[str, Any]:
    """Set settings keys (``{"page_size": 30}``) of a plugin for a municipality; returns the new raw settings.

    Validated before anything is written. An empty ``assignments`` just reads. A change is audited as ``actor``.

    :raises NotFound: unknown municipality.
    :raises PluginError: unknown plugin or a value that breaks the plugin's settings rules.
    """
    plugin = platform.plugins.plugins.get(name)
    if plugin is None:
        raise PluginError(f"{slug}: plugins.{name}: no such plugin is installed")
    async with platform.sessions.platform() as session:
        row = await _municipality_row(session, slug)
        state = await _load_state(session, row.id)
        before = state.get(name, PluginEntry())
        settings = _assign(dict(before.settings), assignments)
        validate_plugin_settings(plugin, settings, where=slug)
        if settings == before.settings:
            return settings
        await _store(session, row.id, name, PluginEntry(enabled=before.enabled, settings=settings))
        keys = sorted(
            k for k in set(before.settings) | set(settings) if before.settings.get(k) != settings.get(k)
        )
        change = Change(municipality=slug, action="configure", target=name, detail=", ".join(keys))
        _audit(session, row.id, [change], actor)
        await bump_revision(session)
    await platform.refresh()
    return settings


def _assign(settings: dict[str, Any], assignments: dict[str, Any]) -> dict[str, Any]:
    """Apply dotted keys (``"limits.per_day"``) onto a nested settings mapping."""
    for dotted, value in assignments.items():
        target = settings
        *parents, last = dotted.split(".")
        for part in parents:
            child = target.get(part)
            if not isinstance(child, dict):
                child = target[part] = {}
            target = child
        target[last] = value
    return settings


async def export_manifest(platform: Platform, slug: str) -> Manifest:
    """The live state of one municipality as a manifest (the inverse of apply).

    :raises NotFound: unknown municipality.
    """
    async with platform.sessions.platform() as session:
        row = await _municipality_row(session, slug)
        state = await _load_state(session, row.id)
        grants = await _load_grants(session, row.id)
    permissions: dict[str, list[str]] = {}
    for role, permission in sorted(grants):
        permissions.setdefault(role, []).append(permission)
    return Manifest(
        slug=row.slug,
        name=row.name,
        name_en=row.name_en,
        code=row.code,
        hosts=tuple(row.hosts),
        timezone=row.timezone,
        locale=row.locale,
        auth=auth_config(row.auth),
        plugins=state,
        permissions={role: tuple(names) for role, names in permissions.items()},
    )


async def _municipality_row(session: AsyncSession, slug: str) -> MunicipalityRow:
    row = await session.scalar(select(MunicipalityRow).where(MunicipalityRow.slug == slug))
    if row is None:
        raise NotFound(f"unknown municipality {slug!r}")
    return row


async def _store(session: AsyncSession, municipality_id: int, name: str, entry: PluginEntry) -> None:
    record = await session.get(PluginEnablementRow, (municipality_id, name))
    if record is None:
        session.add(
            PluginEnablementRow(
                municipality_id=municipality_id,
                plugin=name,
                enabled=entry.enabled,
                settings=dict(entry.settings),
            )
        )
    else:
        record.enabled = entry.enabled
        record.settings = dict(entry.settings)


_AUDIT_ACTIONS = {
    "create": ("core.municipality_created", "municipality"),
    "update": ("core.municipality_updated", "municipality"),
    "enable": ("core.plugin_enabled", "plugin"),
    "disable": ("core.plugin_disabled", "plugin"),
    "add (disabled)": ("core.plugin_configured", "plugin"),
    "configure": ("core.plugin_configured", "plugin"),
    "grant": ("core.permission_granted", "permission"),
    "revoke": ("core.permission_revoked", "permission"),
}


def _audit(session: AsyncSession, municipality_id: int, changes: list[Change], actor: str) -> None:
    """Record each change in the municipality's audit log: names of fields, plugins, keys; never values."""
    for change in changes:
        action, target_type = _AUDIT_ACTIONS[change.action]
        target_id, payload = change.target, {}
        if target_type == "municipality":
            target_id = change.municipality
            if change.action == "update":
                payload = {"field": change.target}
        elif target_type == "permission":
            role, _, target_id = change.target.partition(" ")
            payload = {"role": role}
        elif change.action == "configure":
            payload = {"keys": change.detail.split(", ") if change.detail else []}
        elif change.action == "add (disabled)":
            payload = {"enabled": False}
        audit_record(
            session,
            municipality_id=municipality_id,
            actor=actor,
            action=action,
            target_type=target_type,
            target_id=target_id,
            payload=payload,
        )


async def _after_commit(platform: Platform, changes: list[Change]) -> None:
    await platform.refresh()
    for change in changes:
        if change.action not in ("enable", "disable"):
            continue
        municipality = platform.snapshot.by_slug.get(change.municipality)
        if municipality is None:
            continue
        if change.action == "enable":
            settings = platform.snapshot.settings.get((municipality.id, change.target))
            platform.notify(
                municipality,
                "on_plugin_enabled",
                municipality=municipality,
                plugin_name=change.target,
                settings=settings,
            )
        else:
            enabled = platform.snapshot.enabled.get(municipality.id, frozenset()) | {change.target}
            platform.plugins.notify(
                enabled, "on_plugin_disabled", municipality=municipality, plugin_name=change.target
            )
