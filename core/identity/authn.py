"""Finding out who is calling, from the request's credentials.

Credentials are looked up by their hash in a platform-wide read (the one narrow cross-municipality read of a
request), so a credential issued in municipality A and presented at B is recognised and refused with 403 rather
than mistaken for no credential at all. A session's roles come with it, those of the session's own municipality,
and count only once that is found to be the request's.

Order: ``Authorization: Bearer <access token>``, then ``X-API-Key``, then the session cookie. A credential that is
present but invalid is an error (401), never a silent fall back to anonymous.

A session cookie is an ambient credential (the browser sends it whatever page made the request), so a
state-changing request (POST, PUT, PATCH, DELETE, ...) that it authenticates must also carry the session's CSRF
token, in the ``X-CSRF-Token`` header or a ``csrf_token`` form field, or it is refused with 403. Access tokens and
API keys are exempt: a browser never attaches them by itself.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from litestar import Request
from sqlalchemy import bindparam, select, update

from core.db.base import utcnow
from core.exceptions import Forbidden, NotAuthenticated
from core.identity.models import Account, ApiKey, AuthSession, RoleGrant
from core.identity.principal import ANONYMOUS, Principal

if TYPE_CHECKING:
    from litestar.connection import ASGIConnection

    from core.platform import Platform
    from core.tenancy.registry import Municipality

SESSION_COOKIE = "tsunagu_session"
API_KEY_HEADER = "x-api-key"
API_KEY_PREFIX = "tsu"
LAST_USED_RESOLUTION = timedelta(minutes=1)
"""``last_used_at`` of an API key is written at most this often, so a busy key does not write on every call."""
LAST_SEEN_RESOLUTION = timedelta(minutes=1)
"""``last_seen_at`` of a browser session is written at most this often."""
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
"""Methods that change nothing, and so need no CSRF token."""
_FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})


class CsrfRejected(Forbidden):
    """A state-changing request on a session cookie without that session's CSRF token."""

    title = "CSRF token missing or wrong"


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def parse_api_key(key: str) -> tuple[str, str] | None:
    """``tsu_<prefix>_<secret>`` -> ``(prefix, key)``; ``None`` if it does not look like one of ours."""
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != API_KEY_PREFIX or not parts[1] or not parts[2] or len(key) > 200:
        return None
    return parts[1], key


async def authenticate(platform: Platform, connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    """The caller of this request (cached on the request).

    :raises NotAuthenticated: a credential is present but malformed, unknown, expired or revoked.
    :raises Forbidden: a valid credential issued for another municipality.
    """
    state = connection.scope.setdefault("state", {})
    cached = state.get("principal")
    if cached is not None:
        return cached
    municipality: Municipality | None = state.get("municipality")
    principal = await _resolve(platform, connection, municipality)
    state["principal"] = principal
    return principal


async def _resolve(
    platform: Platform, connection: ASGIConnection[Any, Any, Any, Any], municipality: Municipality | None
) -> Principal:
    authorization = connection.headers.get("authorization")
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise NotAuthenticated("Authorization must be 'Bearer <access token>'")
        from core.identity.access import principal_from_access_token

        return await principal_from_access_token(platform, token.strip(), municipality)
    api_key = connection.headers.get(API_KEY_HEADER)
    if api_key:
        return await principal_from_api_key(platform, api_key.strip(), municipality)
    cookie = connection.cookies.get(SESSION_COOKIE)
    if cookie:
        principal, csrf_token = await session_principal(platform, cookie, municipality)
        await check_csrf(connection, csrf_token)
        return principal
    return ANONYMOUS


async def check_csrf(connection: ASGIConnection[Any, Any, Any, Any], expected: str) -> None:
    """Refuse a state-changing request unless it carries ``expected`` (header, else form field).

    :raises CsrfRejected: the token is missing or differs.
    """
    method = connection.scope.get("method")
    if method is None or method.upper() in SAFE_METHODS:  # websockets have no method
        return
    sent: object = connection.headers.get(CSRF_HEADER)
    if not sent:
        content_type = connection.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if isinstance(connection, Request) and content_type in _FORM_TYPES:
            sent = (await connection.form()).get(CSRF_FIELD)
    if not sent:
        raise CsrfRejected(
            f"send this session's CSRF token in the X-CSRF-Token header or a {CSRF_FIELD} form field"
        )
    if not isinstance(sent, str) or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise CsrfRejected("the CSRF token is not this session's")


def _check_municipality(issued_for: int, municipality: Municipality | None, what: str) -> None:
    if municipality is None or issued_for != municipality.id:
        raise Forbidden(f"this {what} was issued for another municipality")


_KEYS = ApiKey.__table__
_KEY_BY_PREFIX = select(
    _KEYS.c.id,
    _KEYS.c.municipality_id,
    _KEYS.c.secret_hash,
    _KEYS.c.scopes,
    _KEYS.c.expires_at,
    _KEYS.c.revoked_at,
    _KEYS.c.last_used_at,
).where(_KEYS.c.prefix == bindparam("prefix"))
"""One Core statement, built once: a key is looked up on every request that carries one."""


async def principal_from_api_key(
    platform: Platform, key: str, municipality: Municipality | None
) -> Principal:
    parsed = parse_api_key(key)
    if parsed is None:
        raise NotAuthenticated("malformed API key")
    prefix, full = parsed
    now = utcnow()
    async with platform.sessions.platform_reader() as conn:
        row = (await conn.execute(_KEY_BY_PREFIX, {"prefix": prefix})).first()
    if row is None or not hmac.compare_digest(row.secret_hash, sha256_hex(full)):
        raise NotAuthenticated("unknown API key")
    if row.revoked_at is not None:
        raise NotAuthenticated("this API key was revoked")
    if row.expires_at is not None and row.expires_at <= now:
        raise NotAuthenticated("this API key has expired")
    _check_municipality(row.municipality_id, municipality, "API key")
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION:
        async with platform.sessions.platform_connection() as conn:
            await conn.execute(
                update(_KEYS)
                .where(_KEYS.c.municipality_id == row.municipality_id, _KEYS.c.id == row.id)
                .values(last_used_at=now)
            )
    return Principal(
        kind="api_key",
        api_key_id=row.id,
        municipality_id=row.municipality_id,
        scopes=frozenset(row.scopes),
    )


async def principal_from_session(
    platform: Platform, token: str, municipality: Municipality | None
) -> Principal:
    return (await session_principal(platform, token, municipality))[0]


_SESSIONS, _ACCOUNTS, _GRANTS = AuthSession.__table__, Account.__table__, RoleGrant.__table__
_SESSION_BY_HASH = (
    select(
        _SESSIONS.c.municipality_id,
        _SESSIONS.c.token_hash,
        _SESSIONS.c.csrf_token,
        _SESSIONS.c.expires_at,
        _SESSIONS.c.revoked_at,
        _SESSIONS.c.last_seen_at,
        _ACCOUNTS.c.id.label("account_id"),
        _ACCOUNTS.c.disabled_at,
        _ACCOUNTS.c.is_operator,
        _GRANTS.c.role,
    )
    .select_from(
        _SESSIONS.outerjoin(_ACCOUNTS, _ACCOUNTS.c.id == _SESSIONS.c.account_id).outerjoin(
            _GRANTS,
            (_GRANTS.c.municipality_id == _SESSIONS.c.municipality_id)
            & (_GRANTS.c.account_id == _ACCOUNTS.c.id),
        )
    )
    .where(_SESSIONS.c.token_hash == bindparam("token_hash"))
)
"""One Core statement, built once: the session, its account, and one row per role the account holds in the
session's own municipality (a single row with no role when it holds none)."""


async def session_principal(
    platform: Platform, token: str, municipality: Municipality | None
) -> tuple[Principal, str]:
    """The person a session cookie stands for, and the session's CSRF token.

    One read: the session with its account and the roles the account holds in the session's own municipality.
    The roles are used only once the session is known to be the request's municipality's.

    :raises NotAuthenticated: unknown, revoked or expired session, or a disabled account.
    :raises Forbidden: a session of another municipality.
    """
    if len(token) > 200:
        raise NotAuthenticated("malformed session cookie")
    now = utcnow()
    async with platform.sessions.platform_reader() as conn:
        rows = (await conn.execute(_SESSION_BY_HASH, {"token_hash": sha256_hex(token)})).all()
    row = rows[0] if rows else None
    if row is None or row.revoked_at is not None or row.expires_at <= now:
        raise NotAuthenticated("the session has ended; log in again")
    _check_municipality(row.municipality_id, municipality, "session")
    if row.account_id is None or row.disabled_at is not None:
        raise NotAuthenticated("the account is disabled")
    roles = frozenset(r.role for r in rows if r.role is not None)
    if now - row.last_seen_at >= LAST_SEEN_RESOLUTION:
        async with platform.sessions.platform_connection() as conn:
            await conn.execute(
                update(_SESSIONS)
                .where(
                    _SESSIONS.c.municipality_id == row.municipality_id,
                    _SESSIONS.c.token_hash == row.token_hash,
                )
                .values(last_seen_at=now)
            )
    principal = Principal(
        kind="session",
        account_id=row.account_id,
        municipality_id=row.municipality_id,
        roles=roles,
        is_operator=row.is_operator,
    )
    return principal, row.csrf_token


async def roles_of(platform: Platform, municipality_id: int, account_id: Any) -> frozenset[str]:
    """Roles an account holds in one municipality (read in a session bound to it)."""
    async with platform.sessions.tenant(municipality_id) as session:
        rows = await session.scalars(select(RoleGrant.role).where(RoleGrant.account_id == account_id))
        return frozenset(rows)
