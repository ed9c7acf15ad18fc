"""The account an OpenID login opens: found by (issuer, subject), or created. Never found by email."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from core.audit import record as audit_record
from core.identity.models import Account, OidcIdentity
from core.identity.oidc._errors import OidcLoginFailed
from core.identity.oidc._tokens import IdTokenClaims
from core.identity.people import DISPLAY_NAME_MAX, NAME_MAX, normalise_email, normalise_text

if TYPE_CHECKING:
    from core.platform import Platform

log = structlog.get_logger("core.identity.oidc")


def _clean(value: str | None, max_length: int) -> str | None:
    if value is None:
        return None
    try:
        return normalise_text(value, max_length)
    except ValueError:
        return None


def new_account_fields(claims: IdTokenClaims) -> dict[str, Any]:
    """Columns of a new account from the ID token: names as given (when they fit), email only if verified."""
    email = None
    if claims.email is not None and claims.email_verified:
        try:
            email = normalise_email(claims.email)
        except ValueError:
            email = None
    given = _clean(claims.given_name, NAME_MAX)
    family = _clean(claims.family_name, NAME_MAX)
    joined = " ".join(n for n in (family, given) if n) or None  # 姓 名, as Japanese names are written
    display = _clean(claims.name, DISPLAY_NAME_MAX) or _clean(joined, DISPLAY_NAME_MAX)
    if display is None and email is not None:
        display = _clean(email.split("@", 1)[0], DISPLAY_NAME_MAX)
    return {
        "email": email,
        "display_name": display or "-",
        "given_name": given,
        "family_name": family,
    }


async def account_for_login(
    platform: Platform, municipality_id: int, claims: IdTokenClaims
) -> tuple[Account, bool]:
    """The account (issuer, subject) logs in, created if new. Returns it and whether it was created.

    A verified email already held by another account (in any case) is not taken, and that account is not linked:
    the new account is created without an email. Two first logins of one person at once end with one account. A
    new account is recorded in the audit log of ``municipality_id`` (where the login happened), in the same
    transaction.
    """
    for attempt in range(2):
        try:
            return await _find_or_create(platform, municipality_id, claims)
        except IntegrityError:  # a concurrent first login of the same subject, or the same email, won
            if attempt:
                raise
    raise AssertionError("unreachable")


async def _find_or_create(
    platform: Platform, municipality_id: int, claims: IdTokenClaims
) -> tuple[Account, bool]:
    async with platform.sessions.platform() as session:
        identity = await session.get(OidcIdentity, (claims.issuer, claims.subject))
        if identity is not None:
            account = await session.get(Account, identity.account_id)
            if account is None:  # pragma: no cover - the identity row cascades with its account
                raise OidcLoginFailed("the account of this login no longer exists")
            return account, False
        fields = new_account_fields(claims)
        if fields["email"] is not None:
            taken = await session.scalar(
                select(Account.id).where(func.lower(Account.email) == fields["email"].lower()).limit(1)
            )
            if taken is not None:
                log.info("oidc.email_in_use", issuer=claims.issuer, account_id=str(taken))
                fields["email"] = None
        account = Account(id=uuid.uuid4(), **fields)
        session.add(account)
        await session.flush()
        session.add(OidcIdentity(issuer=claims.issuer, subject=claims.subject, account_id=account.id))
        audit_record(
            session,
            actor=f"account:{account.id}",
            action="core.account_created",
            target_type="account",
            target_id=account.id,
            payload={"method": "oidc"},
            municipality_id=municipality_id,
        )
        await session.flush()
        log.info("identity.account_created", account_id=str(account.id), method="oidc")
        return account, True
