"""What a plugin declares about itself: :class:`PluginMeta`, carried by a :class:`Plugin` object.

A plugin package exports ``plugin``, an instance of a :class:`Plugin` subclass whose ``meta`` says who it is and
whose methods marked ``@hookimpl`` implement hooks from :mod:`core.hookspecs`. Built-in plugins and vendors'
packages are found the same way, through the ``tsunagu.plugins`` entry point group.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, ClassVar

import msgspec
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from core.exceptions import ImproperlyConfigured

CORE_API_VERSION = Version("1.0")
"""The version of the hook and service API that plugins are written against. Bump the major on a breaking change."""

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{1,39}$")
RESERVED_NAMES = frozenset(
    {
        "core",
        "auth",
        "audit",
        "notifications",
        "workflow",
        "outbox",
        "m",
        "schema",
        "swagger",
        "healthz",
        "readyz",
        "municipalities",
        # the core's CLI groups
        "municipality",
        "plugin",
        "user",
        "role",
        "db",
        "serve",
        "worker",
        "demo",
        "apikey",
        "keys",
        "notify",
    }
)
"""Names a plugin cannot take: its routes live under ``/<name>``, beside the core's own paths and CLI groups."""


class NoSettings(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Settings type of a plugin that has none: any key given is an error."""


class Title(msgspec.Struct, kw_only=True, frozen=True):
    ja: str
    en: str


class PluginMeta(msgspec.Struct, kw_only=True, frozen=True):
    """A plugin's declaration. Validated when created, so a mistake surfaces when the plugin is loaded."""

    name: str
    """Unique, lowercase: also the URL prefix of its routes (``/<name>/...``) and its CLI group."""
    version: str
    title: Title
    core_api: str = ">=1.0,<2"
    """The range of :data:`CORE_API_VERSION` the plugin supports (a PEP 440 specifier)."""
    requires: dict[str, str] = msgspec.field(default_factory=dict)
    """Plugins that must be enabled in the same municipality first: name -> version specifier."""
    settings: Any = NoSettings
    """A ``msgspec.Struct`` type; each municipality's ``[plugins.<name>]`` table is converted to it."""
    models: tuple[str, ...] = ()
    """Modules that define the plugin's tables on :class:`core.db.Base`; imported when the plugin loads."""
    tables: tuple[str, ...] = ()
    """Names of the tables the plugin owns (shown by ``tsunagu plugin info``, checked at load)."""
    migrations: str | None = None
    """Folder of the plugin's Alembic branch (its first revision carries ``branch_labels = (name,)``)."""
    description: str = ""

    def __post_init__(self) -> None:
        if not NAME_PATTERN.fullmatch(self.name):
            raise ImproperlyConfigured(
                f"plugin name must be lowercase letters, digits and '_' (2-40 chars), got {self.name!r}"
            )
        if self.name in RESERVED_NAMES:
            raise ImproperlyConfigured(f"plugin name {self.name!r} is reserved by the core")
        try:
            Version(self.version)
        except InvalidVersion as exc:
            raise ImproperlyConfigured(f"{self.name}: version must be PEP 440, got {self.version!r}") from exc
        for label, spec in (
            ("core_api", self.core_api),
            *((f"requires.{k}", v) for k, v in self.requires.items()),
        ):
            try:
                SpecifierSet(spec)
            except InvalidSpecifier as exc:
                raise ImproperlyConfigured(
                    f"{self.name}: {label} must be a version specifier, got {spec!r}"
                ) from exc
        if not (isinstance(self.settings, type) and issubclass(self.settings, msgspec.Struct)):
            raise ImproperlyConfigured(
                f"{self.name}: settings must be a msgspec.Struct type, got {self.settings!r}"
            )
        if self.migrations is not None and not Path(self.migrations).is_dir():
            raise ImproperlyConfigured(f"{self.name}: migrations folder {self.migrations} does not exist")

    def supports_core(self, version: Version = CORE_API_VERSION) -> bool:
        return SpecifierSet(self.core_api).contains(version, prereleases=True)


class Plugin:
    """Base class for plugin objects; subclasses set ``meta`` and add ``@hookimpl`` methods."""

    meta: ClassVar[PluginMeta]

    @property
    def name(self) -> str:
        return self.meta.name

    def __repr__(self) -> str:
        return f"<plugin {self.meta.name} {self.meta.version}>"
