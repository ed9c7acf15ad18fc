"""``/auth/...`` of each municipality: password login, logout, and who is signed in.

- ``GET /auth/login`` hands out a login CSRF token (JSON) and sets it as a cookie too (double submit): ``POST
  /auth/login`` must send it back in ``X-CSRF-Token`` or, from an HTML form, a ``csrf_token`` field, so another
  site cannot log a browser in to an account of its choosing.
- ``POST /auth/login`` takes ``{"email", "password"}`` as JSON or as a form; on success it sets the session
  cookie (a new token every time: any session cookie sent along is revoked) and answers with the session's
  CSRF token, which every later state-changing request must send in ``X-CSRF-Token``.
- ``POST /auth/logout`` ends the session and clears the cookie. ``GET /auth/me`` says who is signed in.

Cookies are ``HttpOnly``, ``SameSite=Lax``, ``Secure`` outside development and tests, and scoped to the
municipality's path: ``/m/<slug>/`` when it is bound by path prefix, ``/`` on its own host.
"""

from __future__ import annotations

import hmac
import re
import uuid
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, Router, get, post
from litestar.datastructures import Cookie
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.base import utcnow
from core.exceptions import Forbidden, InvalidInput, NotFound
from core.http.dependencies import DbSession, MunicipalityDep, PlatformDep
from core.identity.authn import CSRF_FIELD, CSRF_HEADER, SESSION_COOKIE, CsrfRejected, authenticate
from core.identity.guards import authenticated
from core.identity.models import Account
from core.identity.passwords import MAX_LOGIN_LENGTH
from core.identity.sessions import IssuedSession, log_in, log_out, new_token
from core.platform import Platform
from core.tenancy.registry import Municipality

LOGIN_CSRF_COOKIE = "tsunagu_login_csrf"
_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")
_INSECURE_ENVIRONMENTS = ("development", "test")


class UnsupportedMediaType(InvalidInput):
    status_code = 415
    title = "Unsupported media type"


class LoginInput(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    email: Annotated[str, msgspec.Meta(min_length=1, max_length=320)]
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_LOGIN_LENGTH)]


class LoginPage(msgspec.Struct, kw_only=True, frozen=True):
    csrf_token: str
    """Send back with the login, in ``X-CSRF-Token`` or the form field ``csrf_token``."""


class LoggedIn(msgspec.Struct, kw_only=True, frozen=True):
    account_id: uuid.UUID
    display_name: str
    csrf_token: str
    """This session's CSRF token: send it in ``X-CSRF-Token`` with every POST, PUT, PATCH and DELETE."""
    expires_at: datetime


class Me(msgspec.Struct, kw_only=True, frozen=True):
    id: uuid.UUID
    display_name: str
    email: str | None
    municipality: str
    roles: list[str]
    """Roles held in this municipality."""
    is_operator: bool


# --- cookies --------------------------------------------------------------------------------------------------


def cookie_path(request: Request[Any, Any, Any]) -> str:
    """The municipality's path: ``/m/<slug>/`` when bound by path prefix (the scope's root path), else ``/``."""
    root = str(request.scope.get("root_path", "")).rstrip("/")
    return f"{root}/"


def browser_cookie(
    platform: Platform, request: Request[Any, Any, Any], key: str, value: str, max_age: int
) -> Cookie:
    """A cookie set the way every ``/auth`` cookie is; ``max_age=0`` clears it.

    HttpOnly, SameSite=Lax, Secure outside development and tests, on the municipality's path.
    """
    return Cookie(
        key=key,
        value=value,
        max_age=max_age,
        path=cookie_path(request),
        httponly=True,
        samesite="lax",
        secure=platform.settings.environment not in _INSECURE_ENVIRONMENTS,
    )


_cookie = browser_cookie  # the name core.identity.oidc_routes imports


def session_cookie(platform: Platform, request: Request[Any, Any, Any], issued: IssuedSession) -> Cookie:
    """The session cookie for a session just opened; it lasts as long as the session."""
    max_age = max(0, int((issued.expires_at - utcnow()).total_seconds()))
    return browser_cookie(platform, request, SESSION_COOKIE, issued.token, max_age=max_age)


# --- handlers -------------------------------------------------------------------------------------------------


def _require_password_login(municipality: Municipality, request: Request[Any, Any, Any]) -> None:
    if not municipality.auth.password_login:
        raise NotFound(f"no such resource: {request.url.path}")


@get("/login", sync_to_thread=False, summary="A CSRF token for the login form")
def login_page(
    request: Request[Any, Any, Any], platform: PlatformDep, municipality: MunicipalityDep
) -> Response[LoginPage]:
    _require_password_login(municipality, request)
    token = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not _TOKEN.fullmatch(token):
        token = new_token()
    return Response(
        LoginPage(csrf_token=token),
        cookies=[browser_cookie(platform, request, LOGIN_CSRF_COOKIE, token, max_age=24 * 3600)],
        headers={"cache-control": "no-store"},
    )


async def _read_login(request: Request[Any, Any, Any]) -> tuple[LoginInput, str | None]:
    """The credentials and the login CSRF token sent along, from JSON or a form."""
    content_type = request.content_type[0]
    sent_csrf = request.headers.get(CSRF_HEADER)
    try:
        if content_type == "application/json":
            return msgspec.json.decode(await request.body(), type=LoginInput), sent_csrf
        if content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            form = await request.form()
            fields = {name: form.get(name) for name in ("email", "password") if form.get(name) is not None}
            field_csrf = form.get(CSRF_FIELD)
            return msgspec.convert(fields, LoginInput), sent_csrf or (
                field_csrf if isinstance(field_csrf, str) else None
            )
    except msgspec.MsgspecError as exc:
        raise InvalidInput(f"login: {exc}") from exc
    raise UnsupportedMediaType("send the login as application/json or application/x-www-form-urlencoded")


@post("/login", status_code=200, summary="Log in with email and password")
async def login(
    request: Request[Any, Any, Any], platform: PlatformDep, municipality: MunicipalityDep
) -> Response[LoggedIn]:
    _require_password_login(municipality, request)
    credentials, sent_csrf = await _read_login(request)
    expected = request.cookies.get(LOGIN_CSRF_COOKIE)
    if not sent_csrf or not expected:
        raise CsrfRejected("get a login CSRF token from GET auth/login and send it back with the login")
    if not hmac.compare_digest(sent_csrf.encode(), expected.encode()):
        raise CsrfRejected("the login CSRF token does not match its cookie")
    issued = await log_in(
        platform,
        municipality,
        email=credentials.email,
        password=credentials.password,
        address=request.client.host if request.client else "",
        replaces=request.cookies.get(SESSION_COOKIE),
    )
    return Response(
        LoggedIn(
            account_id=issued.account_id,
            display_name=issued.display_name,
            csrf_token=issued.csrf_token,
            expires_at=issued.expires_at,
        ),
        cookies=[session_cookie(platform, request, issued)],
        headers={"cache-control": "no-store"},
    )


@post("/logout", status_code=204, guards=[authenticated], summary="End this browser session")
async def logout(
    request: Request[Any, Any, Any], platform: PlatformDep, municipality: MunicipalityDep
) -> Response[None]:
    principal = await authenticate(platform, request)
    token = request.cookies.get(SESSION_COOKIE)
    if principal.kind != "session" or not token:
        raise InvalidInput("logout ends a browser session; revoke access tokens and API keys instead")
    await log_out(platform, municipality, token)
    cleared = browser_cookie(platform, request, SESSION_COOKIE, "", max_age=0)
    return Response(None, status_code=204, cookies=[cleared])


@get("/me", guards=[authenticated], summary="The signed-in person")
async def me(
    request: Request[Any, Any, Any],
    platform: PlatformDep,
    municipality: MunicipalityDep,
    db_session: DbSession,
) -> Me:
    principal = await authenticate(platform, request)
    if principal.account_id is None:
        raise Forbidden("an API key acts for a system, not a person: it has no account")
    account = await _account(db_session, principal.account_id)
    return Me(
        id=account.id,
        display_name=account.display_name,
        email=account.email,
        municipality=municipality.slug,
        roles=sorted(principal.roles),
        is_operator=principal.is_operator,
    )


async def _account(session: AsyncSession, account_id: uuid.UUID) -> Account:
    account = await session.get(Account, account_id)
    if account is None:  # deleted since the credential was checked
        raise NotFound("the account no longer exists")
    return account


def auth_router() -> Router:
    """The ``/auth`` routes, served per municipality (a fresh router for each app)."""
    return Router(path="/auth", route_handlers=[login_page, login, logout, me], tags=["auth"])
