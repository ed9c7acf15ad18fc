"""``/auth/oidc/...`` of each municipality: logging in through its OpenID provider (``core.identity.oidc``).

- ``GET /auth/oidc/login?next=/path`` answers 302 to the provider's authorization endpoint and sets a
  ten-minute cookie holding the login's ``state``, so only this browser can finish the login.
- ``GET /auth/oidc/callback?code&state&iss`` (where the provider sends the browser back) finishes the login,
  sets the session cookie (as ``POST /auth/login`` does) and answers 302 to ``next``.

Both answer 404 where the municipality has no ``[auth.oidc]``. The callback URL given to the provider is
``<scheme>://<host>[/m/<slug>]/auth/oidc/callback`` of the request, which the provider must have registered.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeAlias

from litestar import Request, Router, get
from litestar.di import NamedDependency, Provide
from litestar.params import QueryParameter
from litestar.response import Redirect

from core.db.base import utcnow
from core.http.dependencies import MunicipalityDep, PlatformDep
from core.identity.authn import SESSION_COOKIE
from core.identity.oidc import STATE_LIFETIME, CallbackParams, OidcRelyingParty, require_oidc
from core.identity.routes import _cookie

OIDC_STATE_COOKIE = "tsunagu_oidc_state"
CALLBACK_PATH = "/auth/oidc/callback"
_NO_STORE = {"cache-control": "no-store"}

RelyingPartyDep: TypeAlias = NamedDependency[OidcRelyingParty]
"""A handler parameter ``oidc_rp`` annotated with this receives the router's relying party."""


def _root(request: Request[Any, Any, Any]) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


def callback_uri(request: Request[Any, Any, Any]) -> str:
    """This municipality's callback URL as the browser reaches it (the redirect URI the provider registered)."""
    return f"{request.url.scheme}://{request.url.netloc}{_root(request)}{CALLBACK_PATH}"


@get("/login", status_code=302, summary="Log in through this municipality's OpenID provider")
async def oidc_login(
    request: Request[Any, Any, Any],
    platform: PlatformDep,
    municipality: MunicipalityDep,
    oidc_rp: RelyingPartyDep,
    next_path: Annotated[str | None, QueryParameter(name="next", description="A path on this site")] = None,
) -> Redirect:
    require_oidc(municipality)
    begun = await oidc_rp.begin_login(
        platform, municipality, redirect_uri=callback_uri(request), next_path=next_path
    )
    max_age = int(STATE_LIFETIME.total_seconds())
    return Redirect(
        begun.url,
        status_code=302,
        headers=_NO_STORE,
        cookies=[_cookie(platform, request, OIDC_STATE_COOKIE, begun.state, max_age=max_age)],
    )


@get("/callback", status_code=302, summary="Where the OpenID provider sends the browser back")
async def oidc_callback(
    request: Request[Any, Any, Any],
    platform: PlatformDep,
    municipality: MunicipalityDep,
    oidc_rp: RelyingPartyDep,
) -> Redirect:
    """Query: ``code``, ``state``, ``iss`` (RFC 9207), or ``error`` and ``error_description``."""
    require_oidc(municipality)
    query = request.query_params
    login = await oidc_rp.finish_login(
        platform,
        municipality,
        CallbackParams(**{name: query.get(name) for name in CallbackParams.__struct_fields__}),
        redirect_uri=callback_uri(request),
        browser_state=request.cookies.get(OIDC_STATE_COOKIE),
        replaces=request.cookies.get(SESSION_COOKIE),
    )
    max_age = max(0, int((login.session.expires_at - utcnow()).total_seconds()))
    return Redirect(
        _root(request) + login.redirect_to,
        status_code=302,
        headers=_NO_STORE,
        cookies=[
            _cookie(platform, request, SESSION_COOKIE, login.session.token, max_age=max_age),
            _cookie(platform, request, OIDC_STATE_COOKIE, "", max_age=0),
        ],
    )


def oidc_router(relying_party: OidcRelyingParty | None = None) -> Router:
    """The ``/auth/oidc`` routes with their own relying party (its provider caches live as long as the app)."""
    relying_party = relying_party or OidcRelyingParty()
    return Router(
        path="/auth/oidc",
        route_handlers=[oidc_login, oidc_callback],
        dependencies={"oidc_rp": Provide(lambda: relying_party, sync_to_thread=False)},
        tags=["auth"],
    )
