"""Access tokens of the platform: issuing them for an API key or a signed-in person, and reading a presented one.

Two kinds (the ``typ`` claim), both good for :data:`TOKEN_LIFETIME` in the one municipality they were issued for:

- ``api_key``: for a system holding an API key; its scopes are the key's, or a subset asked for. Every use checks
  that the key still exists and is neither revoked nor expired, so revoking a key ends its tokens at once.
- ``account``: for a person signed in with a browser session, e.g. for a script of theirs or a single-page app.
  Its scopes are the ones asked for (default: all) that some permission the person holds there carries; every
  use reads the person's roles again and refuses a disabled account.

Tokens are signed by the platform's key ring (:mod:`core.identity.keystore`); issuer and audience are the
deployment's public URL (``TSUNAGU_PUBLIC_URL``). Validation errors are :class:`~core.identity.tokens.TokenRejected`
(401, or 403 for a token of another municipality) and reach the client as problem+json.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import msgspec
from sqlalchemy import select

from core.db.base import utcnow
from core.exceptions import Forbidden, InvalidInput, NotAuthenticated
from core.identity.authn import roles_of
from core.identity.keys import KeyRing
from core.identity.keystore import signing_keys
from core.identity.models import Account, ApiKey
from core.identity.principal import Principal
from core.identity.tokens import (
    DEFAULT_LIFETIME,
    InvalidToken,
    TokenType,
    issue_access_token,
    validate_access_token,
)

if TYPE_CHECKING:
    from core.platform import Platform
    from core.tenancy.registry import Municipality

TOKEN_LIFETIME = DEFAULT_LIFETIME
"""Ten minutes: short enough that nothing needs to revoke a token, long enough for a batch of calls."""
_NO_MUNICIPALITY = -1
"""Validates a token presented on an unbound route: a genuine one is then for "another municipality" (403)."""


class IssuedToken(msgspec.Struct, kw_only=True, frozen=True):
    access_token: str
    token_type: TokenType
    expires_at: datetime
    expires_in: int
    """Seconds from issue to expiry."""
    scopes: tuple[str, ...]


def parse_scope(text: str | None) -> tuple[str, ...] | None:
    """An RFC 6749 ``scope`` parameter (space-separated) -> scopes; ``None`` when absent or blank."""
    if text is None:
        return None
    scopes = tuple(dict.fromkeys(text.split()))
    return scopes or None


def scopes_held(
    platform: Platform, municipality: Municipality, roles: frozenset[str], is_operator: bool
) -> set[str]:
    """Scopes carried by the permissions that ``roles`` (or the operator flag) hold in ``municipality``."""
    grants = platform.snapshot.grants.get(municipality.id, {})
    registry = platform.permissions
    return {
        p.scope
        for p in registry.permissions.values()
        if p.scope and (is_operator or registry.role_allows(roles, p.name, grants))
    }


def _check_declared(platform: Platform, scopes: Sequence[str]) -> None:
    unknown = [s for s in scopes if s not in platform.permissions.scopes]
    if unknown:
        valid = ", ".join(sorted(platform.permissions.scopes)) or "none"
        raise InvalidInput(f"unknown scope {unknown[0]!r} (valid scopes: {valid})")


async def issue_token(
    platform: Platform,
    municipality: Municipality,
    principal: Principal,
    requested: Sequence[str] | None = None,
    *,
    now: datetime | None = None,
) -> IssuedToken:
    """An access token for the caller ``principal`` (an API key or a browser session) at ``municipality``.

    :param requested: the scopes asked for; ``None``: every scope the caller may have.
    :raises NotAuthenticated: no caller, or the key has expired meanwhile.
    :raises Forbidden: a caller of another municipality or that cannot get tokens (an access token), scopes the
        key does not hold, or a person holding none of the scopes asked for.
    :raises InvalidInput: a scope no plugin declares.
    """
    if not principal.is_authenticated:
        raise NotAuthenticated("send an API key (X-API-Key), or log in, to get an access token")
    if principal.municipality_id != municipality.id:
        raise Forbidden("this credential was issued for another municipality")
    if requested is not None:
        _check_declared(platform, requested)
    ring = await signing_keys(platform).ring()  # before ``now``: a ring made now has a key active from now on
    now = now or utcnow()
    if principal.kind == "api_key" and principal.api_key_id is not None:
        return await _for_api_key(platform, ring, municipality, principal.api_key_id, requested, now)
    if principal.kind == "session" and principal.account_id is not None:
        return _for_account(platform, ring, municipality, principal, requested, now)
    raise Forbidden("an access token cannot be exchanged for another; use the API key or the session")


async def _for_api_key(
    platform: Platform,
    ring: KeyRing,
    municipality: Municipality,
    key_id: uuid.UUID,
    requested: Sequence[str] | None,
    now: datetime,
) -> IssuedToken:
    async with platform.sessions.tenant(municipality.id) as session:
        key = await session.scalar(select(ApiKey).where(ApiKey.id == key_id))
    if key is None or key.revoked_at is not None:
        raise NotAuthenticated("this API key was revoked")
    held = list(key.scopes)
    if requested is None:
        scopes = tuple(held)
    else:
        missing = [s for s in requested if s not in held]
        if missing:
            raise Forbidden(
                f"this API key does not hold the scope {missing[0]!r} (it holds: {', '.join(held)})"
            )
        scopes = tuple(requested)
    lifetime = TOKEN_LIFETIME
    if key.expires_at is not None:  # a key's token never outlives the key
        lifetime = min(lifetime, timedelta(seconds=int((key.expires_at - now).total_seconds())))
    if lifetime < timedelta(seconds=1):
        raise NotAuthenticated("this API key has expired")
    return _issue(platform, ring, municipality, str(key.id), scopes, "api_key", lifetime, now)


def _for_account(
    platform: Platform,
    ring: KeyRing,
    municipality: Municipality,
    principal: Principal,
    requested: Sequence[str] | None,
    now: datetime,
) -> IssuedToken:
    held = scopes_held(platform, municipality, principal.roles, principal.is_operator)
    scopes = tuple(sorted(held)) if requested is None else tuple(s for s in requested if s in held)
    if not scopes:
        wanted = "any scope" if requested is None else f"the scopes {', '.join(requested)}"
        raise Forbidden(f"no permission you hold in {municipality.slug} carries {wanted}")
    return _issue(
        platform, ring, municipality, str(principal.account_id), scopes, "account", TOKEN_LIFETIME, now
    )


def _issue(
    platform: Platform,
    ring: KeyRing,
    municipality: Municipality,
    subject: str,
    scopes: tuple[str, ...],
    token_type: TokenType,
    lifetime: timedelta,
    now: datetime,
) -> IssuedToken:
    url = platform.settings.base_url
    token = issue_access_token(
        ring,
        subject=subject,
        municipality_id=municipality.id,
        scopes=scopes,
        audience=url,
        issuer=url,
        now=now,
        lifetime=lifetime,
        token_type=token_type,
    )
    seconds = int(lifetime.total_seconds())
    return IssuedToken(
        access_token=token,
        token_type=token_type,
        expires_at=now + timedelta(seconds=seconds),
        expires_in=seconds,
        scopes=scopes,
    )


# --- reading a presented token -----------------------------------------------------------------------------


async def principal_from_access_token(
    platform: Platform, token: str, municipality: Municipality | None
) -> Principal:
    """The caller a ``Bearer`` token stands for, at ``municipality`` (the request's).

    :raises InvalidToken: (401) malformed, forged, expired, not for this deployment; its API key revoked,
        expired or gone; its account disabled or gone.
    :raises TokenForOtherMunicipality: (403) a genuine token of another municipality, or on an unbound route.
    """
    now = utcnow()
    ring = await signing_keys(platform).ring_for(_kid_of(token), now)
    url = platform.settings.base_url
    claims = validate_access_token(
        token,
        ring,
        issuer=url,
        audience=url,
        municipality_id=_NO_MUNICIPALITY if municipality is None else municipality.id,
        now=now,
    )
    try:
        subject = uuid.UUID(claims.sub)
    except ValueError:
        raise InvalidToken("the token's subject is not one of ours") from None
    if claims.typ == "api_key":
        async with platform.sessions.tenant(claims.mid) as session:
            key = await session.scalar(select(ApiKey).where(ApiKey.id == subject))
        if key is None:
            raise InvalidToken("the API key of this token no longer exists")
        if key.revoked_at is not None:
            raise InvalidToken("the API key of this token was revoked")
        if key.expires_at is not None and key.expires_at <= now:
            raise InvalidToken("the API key of this token has expired")
        return Principal(
            kind="api_key",
            api_key_id=key.id,
            municipality_id=claims.mid,
            scopes=frozenset(claims.scopes) & frozenset(key.scopes),
        )
    async with platform.sessions.tenant(claims.mid) as session:
        account = await session.get(Account, subject)
    if account is None or account.disabled_at is not None:
        raise InvalidToken("the account of this token is disabled")
    return Principal(
        kind="token",
        account_id=account.id,
        municipality_id=claims.mid,
        roles=await roles_of(platform, claims.mid, account.id),
        scopes=frozenset(claims.scopes),
        is_operator=account.is_operator,
    )


_HEADER = msgspec.json.Decoder(dict)


def _kid_of(token: str) -> str | None:
    """The ``kid`` of a token's header, read without any checks, only to decide whether the ring needs reading
    again; ``None`` if there is none. :func:`validate_access_token` reads the header properly."""
    head = token.partition(".")[0]
    if not head or len(head) > 1024:
        return None
    try:
        header = _HEADER.decode(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    except (binascii.Error, ValueError, msgspec.DecodeError):
        return None
    kid = header.get("kid")
    return kid if isinstance(kid, str) else None
