"""Browser sessions: logging in with a local password, and ending a session. No HTTP in here.

A session is a row in ``auth_sessions`` of the municipality where the person logged in. The browser holds a random
32-byte token; the row holds only its SHA-256 and the session's CSRF token, which every state-changing request
on the session must send back (checked in ``core.identity.authn``). A session lasts ``[auth] session_hours``
from the login; ``last_seen_at`` follows its use, to the minute.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import msgspec
import structlog
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.audit import record
from core.db.base import utcnow
from core.exceptions import NotAuthenticated, NotFound
from core.identity import throttle
from core.identity.authn import sha256_hex
from core.identity.models import AuthSession
from core.identity.passwords import check_password_login, login_email

if TYPE_CHECKING:
    from core.platform import Platform
    from core.tenancy.registry import Municipality

log = structlog.get_logger(__name__)

TOKEN_BYTES = 32
LOGIN_FAILED = "email or password is wrong"


class LoginFailed(NotAuthenticated):
    """Wrong credentials. One message for every cause, so it never tells whether an account exists."""

    title = "Login failed"

    def __init__(self) -> None:
        super().__init__(LOGIN_FAILED)


class IssuedSession(msgspec.Struct, kw_only=True, frozen=True):
    token: str
    """Goes to the browser in the session cookie, and nowhere else (never logged, never stored)."""
    csrf_token: str
    account_id: uuid.UUID
    display_name: str
    expires_at: datetime


def new_token() -> str:
    """A random 32-byte token, URL-safe base64 (43 characters)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


async def start_session(
    session: AsyncSession,
    municipality: Municipality,
    account_id: uuid.UUID,
    *,
    replaces: str | None = None,
    now: datetime | None = None,
) -> tuple[str, AuthSession]:
    """Create a session row in ``session`` (bound to ``municipality``); revoke the one ``replaces`` names.

    Returns the new token and the row. Always a new token: a session is never carried over a login.
    """
    now = now or utcnow()
    if replaces:
        await revoke(session, replaces, now=now)
    token = new_token()
    row = AuthSession(
        municipality_id=municipality.id,
        token_hash=sha256_hex(token),
        account_id=account_id,
        csrf_token=new_token(),
        created_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(hours=municipality.auth.session_hours),
    )
    session.add(row)
    return token, row


async def revoke(session: AsyncSession, token: str, *, now: datetime | None = None) -> bool:
    """End the session this token opens, if it is one of the bound municipality's. Returns whether it was."""
    if len(token) > 200:
        return False
    result = await session.execute(
        update(AuthSession)
        .where(AuthSession.token_hash == sha256_hex(token), AuthSession.revoked_at.is_(None))
        .values(revoked_at=now or utcnow())
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def log_in(
    platform: Platform,
    municipality: Municipality,
    *,
    email: str,
    password: str,
    address: str,
    replaces: str | None = None,
) -> IssuedSession:
    """Check a local password and open a session in ``municipality``; revoke the session ``replaces`` names.

    :raises NotFound: the municipality does not offer password login.
    :raises LoginThrottled: too many failed attempts for this email or from this address.
    :raises LoginFailed: anything else that is wrong — unknown email, wrong password, disabled account,
        account without a password — with one message.
    """
    if not municipality.auth.password_login:
        raise NotFound(f"{municipality.slug} does not offer password login")
    keys = throttle.login_keys(email, address)
    await throttle.charge(platform, keys)
    account = await check_password_login(platform, municipality.id, email, password)
    if account is None:
        async with platform.sessions.tenant(municipality.id) as session:
            # The email is personal data: the log keeps a keyed hash, enough to see repeated attempts.
            record(
                session,
                actor="anonymous",
                action="core.login_failed",
                target_type="login",
                target_id="password",
                payload={"email": login_email(email), "address": address},
                personal=("email", "address"),
            )
        raise LoginFailed()
    await throttle.settle_success(platform, keys)
    async with platform.sessions.tenant(municipality.id) as session:
        token, row = await start_session(session, municipality, account.id, replaces=replaces)
        record(
            session,
            actor=f"account:{account.id}",
            action="core.logged_in",
            target_type="account",
            target_id=account.id,
            payload={"method": "password"},
        )
    log.info("auth.logged_in", account_id=str(account.id), method="password")
    return IssuedSession(
        token=token,
        csrf_token=row.csrf_token,
        account_id=account.id,
        display_name=account.display_name,
        expires_at=row.expires_at,
    )


async def log_out(platform: Platform, municipality: Municipality, token: str) -> bool:
    """Revoke the session ``token`` opens in ``municipality``. Returns whether there was one to revoke."""
    async with platform.sessions.tenant(municipality.id) as session:
        account_id = await session.scalar(
            select(AuthSession.account_id).where(AuthSession.token_hash == sha256_hex(token[:200]))
        )
        revoked = await revoke(session, token)
        if revoked:
            record(
                session,
                actor=f"account:{account_id}",
                action="core.logged_out",
                target_type="account",
                target_id=account_id,
            )
    if revoked:
        log.info("auth.logged_out")
    return revoked
