"""Municipality manifests: ``municipalities/<slug>.toml`` parsed and validated.

A manifest is the declared state of one tenant: who it is, which hosts reach it, and which plugins it runs with
which settings. ``tsunagu municipality apply`` makes the live state (in the database) match it. Every error names
the file and the key path, because administrators edit these by hand.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from core.exceptions import InvalidInput
from core.identity.config import DEFAULT_AUTH, AuthConfig
from core.identity.permissions import PERMISSION_PATTERN, ROLES
from core.tenancy.codes import validate_local_government_code

SLUG_PATTERN = re.compile(r"^[a-z][a-z0-9-]{1,39}$")
HOST_PATTERN = re.compile(
    r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*(:\d{1,5})?$"
)
PLUGIN_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{1,39}$")
LOCALES = ("ja", "en")


class PluginEntry(msgspec.Struct, kw_only=True, frozen=True):
    """One ``[plugins.<name>]`` table: whether it is on, and its settings as written (validated by the plugin)."""

    enabled: bool = False
    settings: dict[str, Any] = msgspec.field(default_factory=dict)


class Manifest(msgspec.Struct, kw_only=True, frozen=True):
    slug: str
    name: str
    name_en: str
    code: str
    hosts: tuple[str, ...] = ()
    timezone: str = "Asia/Tokyo"
    locale: str = "ja"
    plugins: dict[str, PluginEntry] = msgspec.field(default_factory=dict)
    permissions: dict[str, tuple[str, ...]] = msgspec.field(default_factory=dict)
    """``[permissions]``: role -> permissions this municipality gives it beyond the plugins' defaults."""
    auth: AuthConfig = DEFAULT_AUTH
    """``[auth]``: local passwords on or off, the OpenID provider."""

    def to_toml_dict(self) -> dict[str, Any]:
        """The manifest as a TOML-ready mapping, in the order an administrator reads it."""
        out: dict[str, Any] = {
            "slug": self.slug,
            "name": self.name,
            "name_en": self.name_en,
            "code": self.code,
            "hosts": list(self.hosts),
            "timezone": self.timezone,
            "locale": self.locale,
        }
        if self.plugins:
            out["plugins"] = {
                name: {"enabled": entry.enabled, **entry.settings}
                for name, entry in sorted(self.plugins.items())
            }
        if self.auth != DEFAULT_AUTH:
            out["auth"] = _without_none(msgspec.to_builtins(self.auth))
        if any(self.permissions.values()):
            out["permissions"] = {role: sorted(p) for role, p in sorted(self.permissions.items()) if p}
        return out


def _without_none(value: Any) -> Any:
    """TOML has no null: leave unset keys out."""
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    return value


class _RawManifest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    slug: str
    name: str
    name_en: str
    code: str
    hosts: list[str] = msgspec.field(default_factory=list)
    timezone: str = "Asia/Tokyo"
    locale: str = "ja"
    plugins: dict[str, Any] = msgspec.field(default_factory=dict)
    """Tables checked one by one below, so an error names ``plugins.<name>`` rather than an index."""
    permissions: dict[str, list[str]] = msgspec.field(default_factory=dict)
    auth: AuthConfig = DEFAULT_AUTH


def key_path_of(error: msgspec.ValidationError) -> tuple[str, str]:
    """Split msgspec's ``"rule - at `$.a.b`"`` message into (``"a.b"``, ``"rule"``)."""
    message = str(error)
    match = re.match(r"^(?P<rule>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", message, re.S)
    assert match is not None
    path = (match.group("path") or "").lstrip(".")
    path = re.sub(r"\[(\d+)\]", r".\1", path).replace("[", ".").replace("]", "")
    return path, match.group("rule")


def parse_manifest(data: dict[str, Any], source: str) -> Manifest:
    """Validate a manifest mapping; ``source`` names the file in error messages.

    :raises InvalidInput: naming ``source``, the key path and the rule.
    """

    def fail(path: str, rule: str) -> InvalidInput:
        return InvalidInput(f"{source}: {path}: {rule}", source=source, key=path)

    try:
        raw = msgspec.convert(data, _RawManifest)
    except msgspec.ValidationError as exc:
        path, rule = key_path_of(exc)
        unknown = re.fullmatch(r"Object contains unknown field `(?P<key>[^`]*)`", rule)
        if unknown is not None:  # name the offending key itself, not the table that holds it
            path, rule = ".".join(filter(None, (path, unknown.group("key")))), "unknown key"
        raise fail(path or "(top level)", rule) from exc
    if not SLUG_PATTERN.fullmatch(raw.slug):
        raise fail(
            "slug", f"must be lowercase letters, digits and '-', starting with a letter, got {raw.slug!r}"
        )
    if (problem := validate_local_government_code(raw.code)) is not None:
        raise fail("code", problem)
    if not raw.name.strip() or not raw.name_en.strip():
        raise fail("name" if not raw.name.strip() else "name_en", "must not be empty")
    hosts = []
    for index, host in enumerate(raw.hosts):
        normal = host.strip().lower()
        if not HOST_PATTERN.fullmatch(normal):
            raise fail(f"hosts.{index}", f"must be a host name (optionally with :port), got {host!r}")
        if normal in hosts:
            raise fail(f"hosts.{index}", f"{normal!r} is listed twice")
        hosts.append(normal)
    try:
        ZoneInfo(raw.timezone)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # "Asia" is a directory of tzdata
        raise fail("timezone", f"must be an IANA time zone such as Asia/Tokyo, got {raw.timezone!r}") from exc
    if raw.locale not in LOCALES:
        raise fail("locale", f"must be one of {', '.join(LOCALES)}, got {raw.locale!r}")
    plugins: dict[str, PluginEntry] = {}
    for plugin_name, table in raw.plugins.items():
        if not PLUGIN_NAME_PATTERN.fullmatch(plugin_name):
            raise fail(f"plugins.{plugin_name}", "plugin names are lowercase letters, digits and '_'")
        if not isinstance(table, dict):
            raise fail(f"plugins.{plugin_name}", "must be a table")
        settings = dict(table)
        enabled = settings.pop("enabled", False)
        if not isinstance(enabled, bool):
            raise fail(f"plugins.{plugin_name}.enabled", f"must be true or false, got {enabled!r}")
        # Settings are stored as JSON: normalise now (TOML dates become ISO strings) so a re-apply compares equal.
        plugins[plugin_name] = PluginEntry(
            enabled=enabled, settings=msgspec.json.decode(msgspec.json.encode(settings))
        )
    permissions: dict[str, tuple[str, ...]] = {}
    for role, names in raw.permissions.items():
        if role not in ROLES:
            raise fail(f"permissions.{role}", f"roles are {', '.join(ROLES)}, got {role!r}")
        for index, name in enumerate(names):
            if not PERMISSION_PATTERN.fullmatch(name):
                raise fail(f"permissions.{role}.{index}", f"must look like <plugin>.<action>, got {name!r}")
        permissions[role] = tuple(sorted(set(names)))
    return Manifest(
        slug=raw.slug,
        name=raw.name.strip(),
        name_en=raw.name_en.strip(),
        code=raw.code,
        hosts=tuple(hosts),
        timezone=raw.timezone,
        locale=raw.locale,
        plugins=plugins,
        permissions=permissions,
        auth=raw.auth,
    )


def load_manifest(path: Path) -> Manifest:
    """Read and validate one manifest file.

    :raises InvalidInput: if the file is unreadable, not TOML, or breaks a rule; the message names the file.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{path}: cannot read: {exc}", source=str(path)) from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput(f"{path}: not valid TOML: {exc}", source=str(path)) from exc
    manifest = parse_manifest(data, str(path))
    if path.suffix == ".toml" and path.stem != manifest.slug:
        raise InvalidInput(f"{path}: slug: must match the file name {path.stem!r}, got {manifest.slug!r}")
    return manifest


def load_manifests(paths: list[Path]) -> list[Manifest]:
    """Load several manifests and check what must hold between them (unique slugs, codes and hosts).

    :raises InvalidInput: on the first problem found; nothing is applied by the caller in that case.
    """
    manifests = [load_manifest(p) for p in paths]
    seen: dict[str, dict[str, str]] = {"slug": {}, "code": {}, "host": {}}
    for path, m in zip(paths, manifests, strict=True):
        keyed = [
            ("slug", "slug", m.slug),
            ("code", "code", m.code),
            *(("host", f"hosts.{i}", host) for i, host in enumerate(m.hosts)),
        ]
        for kind, key, value in keyed:
            if value in seen[kind]:
                raise InvalidInput(
                    f"{path}: {key}: {kind} {value!r} is also used by {seen[kind][value]}",
                    source=str(path),
                    key=key,
                )
            seen[kind][value] = str(path)
    return manifests
