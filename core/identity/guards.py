"""Route guards plugins use to require a permission in the request's municipality.

``guards=[requires("notices.post")]`` on a handler: anonymous callers get 401, a credential from another
municipality or without the permission gets 403. The permission must be declared (``register_permissions``): ``create_app``
checks every guarded route, so a typo fails when the app is built, not when the route is first called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.exceptions import Forbidden, NotAuthenticated
from core.identity.authn import authenticate
from core.identity.principal import Principal

if TYPE_CHECKING:
    from litestar.connection import ASGIConnection
    from litestar.handlers import BaseRouteHandler

    from core.platform import Platform
    from core.tenancy.registry import Municipality


def is_allowed(platform: Platform, principal: Principal, municipality: Municipality, permission: str) -> bool:
    """The one authorisation rule: roles (and scopes, for keys and tokens) in the bound municipality."""
    declared = platform.permissions.get(permission)
    if principal.municipality_id != municipality.id:
        return False
    if principal.scopes is not None and (declared.scope is None or declared.scope not in principal.scopes):
        return False
    if principal.kind == "api_key":
        return True  # a key is exactly its scopes
    if principal.is_operator:
        return True
    grants = platform.snapshot.grants.get(municipality.id, {})
    return platform.permissions.role_allows(principal.roles, permission, grants)


class requires:  # noqa: N801 - reads as a phrase in ``guards=[requires("notices.post")]``
    """A Litestar guard requiring one permission."""

    def __init__(self, permission: str) -> None:
        self.permission = permission

    async def __call__(
        self, connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler
    ) -> None:
        platform: Platform = connection.app.state.platform
        platform.permissions.get(self.permission)
        municipality = connection.scope.get("state", {}).get("municipality")
        if municipality is None:
            raise NotAuthenticated("this route is served per municipality")
        principal = await authenticate(platform, connection)
        if not principal.is_authenticated:
            raise NotAuthenticated(f"log in or send a credential to use this ({self.permission})")
        if not is_allowed(platform, principal, municipality, self.permission):
            raise Forbidden(f"you need the permission {self.permission} in {municipality.slug}")

    def __repr__(self) -> str:
        return f"requires({self.permission!r})"


async def authenticated(connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler) -> None:
    """A guard for routes any signed-in caller may use (their own profile, logout)."""
    principal = await authenticate(connection.app.state.platform, connection)
    if not principal.is_authenticated:
        raise NotAuthenticated("log in first")
