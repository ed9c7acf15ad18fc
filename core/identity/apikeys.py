"""API keys: for a vendor's system or another municipal system, bound to one municipality. No HTTP in here.

A key reads ``tsu_<prefix>_<secret>``: the prefix (10 random base32 characters) finds the row and is safe to
show and log; the secret (32 random bytes) is shown once, when the key is made. Only the SHA-256 of the whole key
is stored. A key can do exactly what its scopes carry (see :func:`core.identity.guards.is_allowed`), only in its
municipality, until it expires or is revoked; both take effect on the next request.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

import msgspec
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from core.audit import record
from core.db.base import utcnow
from core.exceptions import Conflict, InvalidInput, NotFound
from core.identity.authn import API_KEY_PREFIX, parse_api_key, sha256_hex
from core.identity.models import ApiKey

if TYPE_CHECKING:
    from core.platform import Platform
    from core.tenancy.registry import Municipality

PREFIX_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
"""Lower-case RFC 4648 base32: no ``_`` (the separator), nothing that needs quoting."""
PREFIX_LENGTH = 10
SECRET_BYTES = 32
MAX_KEY_LIFETIME = timedelta(days=731)
"""No key lives longer than two years: a forgotten key stops working on its own."""
MAX_NAME_LENGTH = 100
_PREFIX_ATTEMPTS = 5

KeyStatus = Literal["active", "expired", "revoked"]


class ApiKeyInfo(msgspec.Struct, kw_only=True, frozen=True):
    """What may be shown about a key, ever: everything but the secret."""

    id: uuid.UUID
    municipality: str
    """The slug of the municipality the key is good in."""
    prefix: str
    name: str
    scopes: tuple[str, ...]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    """To the minute: written at most once a minute."""

    def status(self, now: datetime) -> KeyStatus:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"


def _info(row: ApiKey, municipality: Municipality) -> ApiKeyInfo:
    return ApiKeyInfo(
        id=row.id,
        municipality=municipality.slug,
        prefix=row.prefix,
        name=row.name,
        scopes=tuple(row.scopes),
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        last_used_at=row.last_used_at,
    )


def check_scopes(platform: Platform, scopes: Iterable[str]) -> tuple[str, ...]:
    """The scopes, deduplicated and sorted, if every one is declared by a loaded plugin.

    :raises InvalidInput: naming the first unknown scope and listing the valid ones; or no scope at all.
    """
    wanted = sorted(set(scopes))
    valid = sorted(platform.permissions.scopes)
    listing = ", ".join(valid) if valid else "none: no loaded plugin declares a scope"
    if not wanted:
        raise InvalidInput(f"give at least one scope (valid scopes: {listing})")
    for scope in wanted:
        if scope not in platform.permissions.scopes:
            raise InvalidInput(f"unknown scope {scope!r} (valid scopes: {listing})")
    return tuple(wanted)


def _check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > MAX_NAME_LENGTH or not name.isprintable():
        raise InvalidInput(
            f"the key's name must be 1 to {MAX_NAME_LENGTH} printable characters, got {name[:120]!r}"
        )
    return name


def _check_expiry(expires_at: datetime, now: datetime) -> None:
    if expires_at.tzinfo is None or expires_at.utcoffset() is None:
        raise InvalidInput(f"expires_at must have a time zone, got {expires_at.isoformat()}")
    if expires_at <= now:
        raise InvalidInput(f"the key must expire in the future, got {expires_at.isoformat()}")
    if expires_at > now + MAX_KEY_LIFETIME:
        raise InvalidInput(
            f"a key may live at most {MAX_KEY_LIFETIME.days} days, until {(now + MAX_KEY_LIFETIME).isoformat()}; "
            f"got {expires_at.isoformat()}"
        )


def _new_key() -> tuple[str, str]:
    prefix = "".join(secrets.choice(PREFIX_ALPHABET) for _ in range(PREFIX_LENGTH))
    return prefix, f"{API_KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(SECRET_BYTES)}"


async def create_api_key(
    platform: Platform,
    municipality: Municipality,
    *,
    name: str,
    scopes: Iterable[str],
    expires_at: datetime,
    now: datetime | None = None,
    actor: str = "cli",
) -> tuple[ApiKeyInfo, str]:
    """A new key for ``municipality``: its description, and the full key, which is not stored and cannot be
    shown again.

    :raises InvalidInput: an empty or overlong name, an unknown scope or none, an expiry that is not in the
        future or more than two years ahead.
    """
    now = now or utcnow()
    name = _check_name(name)
    checked = check_scopes(platform, scopes)
    _check_expiry(expires_at, now)
    for _ in range(_PREFIX_ATTEMPTS):
        prefix, key = _new_key()
        assert parse_api_key(key) == (prefix, key)
        row = ApiKey(
            municipality_id=municipality.id,
            id=uuid.uuid4(),
            prefix=prefix,
            secret_hash=sha256_hex(key),
            name=name,
            scopes=list(checked),
            created_at=now,
            expires_at=expires_at,
        )
        try:
            async with platform.sessions.tenant(municipality.id) as session:
                session.add(row)
                await session.flush()
                record(
                    session,
                    actor=actor,
                    action="core.api_key_created",
                    target_type="api_key",
                    target_id=row.id,
                    payload={"name": name, "scopes": list(checked), "expires_at": expires_at},
                )
        except IntegrityError:  # the prefix is taken (50 random bits: practically never); draw another
            continue
        return _info(row, municipality), key
    raise Conflict("could not find an unused key prefix; try again")


async def list_api_keys(platform: Platform, municipality: Municipality) -> list[ApiKeyInfo]:
    """Every key of ``municipality``, revoked and expired ones included, oldest first."""
    async with platform.sessions.tenant(municipality.id) as session:
        rows = await session.scalars(select(ApiKey).order_by(ApiKey.created_at, ApiKey.id))
        return [_info(row, municipality) for row in rows]


async def revoke_api_key(
    platform: Platform,
    municipality: Municipality,
    key: str | uuid.UUID,
    *,
    now: datetime | None = None,
    actor: str = "cli",
) -> tuple[ApiKeyInfo, bool]:
    """Revoke a key of ``municipality``, named by its id or its prefix. Idempotent: revoking a revoked key
    changes nothing. Returns the key and whether this call revoked it.

    :raises NotFound: ``municipality`` has no such key (a key of another municipality is not found either).
    """
    now = now or utcnow()
    where = _identifies(key)
    async with platform.sessions.tenant(municipality.id) as session:
        row = await session.scalar(select(ApiKey).where(where))
        if row is None:
            raise NotFound(f"{municipality.slug} has no API key {str(key)!r} (see: tsunagu apikey list)")
        result = await session.execute(
            update(ApiKey)
            .where(ApiKey.id == row.id, ApiKey.revoked_at.is_(None))
            .values(revoked_at=now)
            .execution_options(synchronize_session=False)
        )
        changed = result.rowcount == 1  # type: ignore[attr-defined]  # 0: revoked before, maybe just now
        if changed:
            record(
                session, actor=actor, action="core.api_key_revoked", target_type="api_key", target_id=row.id
            )
        await session.refresh(row)
        return _info(row, municipality), changed


def _identifies(key: str | uuid.UUID) -> object:
    if isinstance(key, uuid.UUID):
        return ApiKey.id == key
    text = key.strip()
    try:
        return ApiKey.id == uuid.UUID(text)
    except ValueError:
        pass
    if not text or len(text) > 16 or any(c not in PREFIX_ALPHABET for c in text):
        raise InvalidInput(
            f"name a key by its id or its prefix (see: tsunagu apikey list), got {text[:40]!r}"
        )
    return ApiKey.prefix == text
