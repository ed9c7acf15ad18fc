"""Permissions: declared by plugins, given to roles by default, extended per municipality.

A permission is named ``<plugin>.<action>`` (``notices.post``). Its declaration says which roles hold it by
default and which API scope carries it (``notices:write``), so a vendor's key can be limited to what it needs.
A municipality gives roles more through its manifest (``[permissions]``) or ``tsunagu role grant``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

import msgspec

from core.exceptions import ImproperlyConfigured

ROLES = ("resident", "staff", "admin")
"""Roles held per municipality. ``operator`` is not among them: it is an account flag for the whole deployment."""

PERMISSION_PATTERN = re.compile(r"[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*")
SCOPE_PATTERN = re.compile(r"[a-z][a-z0-9_]*:[a-z][a-z0-9_]*")


class Permission(msgspec.Struct, kw_only=True, frozen=True):
    name: str
    """``<plugin>.<action>``; the prefix is the declaring plugin's name (``core`` for the core)."""
    description: str
    default_roles: tuple[str, ...] = ("admin",)
    """Roles that hold it in every municipality without a grant."""
    scope: str | None = None
    """The API scope that carries it (``<plugin>:<word>``); ``None``: no key or token can use it."""


class PermissionRegistry:
    """Every declared permission, checked once at start-up."""

    def __init__(self, declared: Mapping[str, Iterable[Permission]]) -> None:
        self.permissions: dict[str, Permission] = {}
        for owner, permissions in declared.items():
            for permission in permissions:
                self._check(owner, permission)
                self.permissions[permission.name] = permission
        self.scopes = frozenset(p.scope for p in self.permissions.values() if p.scope)

    def _check(self, owner: str, permission: Permission) -> None:
        where = f"{owner}: permission {permission.name!r}"
        if not PERMISSION_PATTERN.fullmatch(permission.name):
            raise ImproperlyConfigured(f"{where}: name must look like <plugin>.<action>")
        if permission.name.split(".", 1)[0] != owner:
            raise ImproperlyConfigured(f"{where}: name must start with '{owner}.'")
        if permission.name in self.permissions:
            raise ImproperlyConfigured(f"{where}: declared twice")
        unknown = [r for r in permission.default_roles if r not in ROLES]
        if unknown:
            raise ImproperlyConfigured(
                f"{where}: default_roles must be among {', '.join(ROLES)}, got {unknown}"
            )
        if permission.scope is not None and not (
            SCOPE_PATTERN.fullmatch(permission.scope) and permission.scope.split(":", 1)[0] == owner
        ):
            raise ImproperlyConfigured(
                f"{where}: scope must look like '{owner}:<word>', got {permission.scope!r}"
            )

    def get(self, name: str) -> Permission:
        """:raises ImproperlyConfigured: for a permission nobody declared (a typo in a guard)."""
        try:
            return self.permissions[name]
        except KeyError:
            raise ImproperlyConfigured(f"permission {name!r} is not declared by any plugin") from None

    def role_allows(self, roles: Iterable[str], permission: str, extra: Mapping[str, frozenset[str]]) -> bool:
        """Whether any of ``roles`` holds ``permission``, by default or by the municipality's ``extra`` grants."""
        declared = self.get(permission)
        return any(
            role in declared.default_roles or permission in extra.get(role, frozenset()) for role in roles
        )
