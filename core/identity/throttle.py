"""Throttling password logins per email and per client address, shared by every process through the database.

Each attempt is *charged* before the password is checked, in one atomic upsert per key (``INSERT … ON CONFLICT
DO UPDATE … RETURNING``, on SQLite and PostgreSQL alike), so parallel attempts never lose a count and no more
than ``limit`` passwords are ever tried per key and window, however many requests race. An attempt past the
limit locks the key; a locked key refuses every attempt, right password or not, until the lock ends. A
successful login clears its email's count and gives its charge back to the address.

The email key is the SHA-256 of the normalised email as submitted, not an account id: an email nobody has is
throttled exactly like one somebody has, so the answers do not tell them apart. The address key is the client
address (an IPv6 address by its /64, which one household or attacker usually holds whole). Behind a proxy, the
server must be told to trust its forwarded address (``uvicorn --proxy-headers --forwarded-allow-ips``), or
every client is the proxy.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import msgspec
import structlog
from sqlalchemy import and_, case, delete, literal, or_, update
from sqlalchemy.dialects import postgresql, sqlite

from core.db.base import UTCDateTime, utcnow
from core.exceptions import PlatformError
from core.identity.models import LoginThrottle

if TYPE_CHECKING:
    from core.platform import Platform

log = structlog.get_logger(__name__)


class Limit(msgspec.Struct, kw_only=True, frozen=True):
    attempts: int
    """Failed attempts allowed per window; the next one locks the key."""
    window: timedelta = timedelta(minutes=15)
    lock: timedelta = timedelta(minutes=15)


EMAIL_LIMIT = Limit(attempts=5)
ADDRESS_LIMIT = Limit(attempts=30)


class LoginThrottled(PlatformError):
    """Too many failed logins for this email or from this address: wait ``Retry-After`` seconds."""

    status_code = 429
    title = "Too many login attempts"
    exit_code = 1

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed logins: try again in {_minutes(retry_after)}")
        self.retry_after = retry_after
        self.headers = {"Retry-After": str(retry_after)}


def _minutes(seconds: int) -> str:
    minutes = math.ceil(seconds / 60)
    return "1 minute" if minutes <= 1 else f"{minutes} minutes"


def email_key(email: str) -> str:
    """``email:<sha256>`` of the email as submitted, normalised and case-folded (no email is stored)."""
    from core.identity.passwords import login_email

    return "email:" + hashlib.sha256(login_email(email).casefold().encode()).hexdigest()


def address_key(address: str) -> str:
    """``address:<ip>`` (IPv4) or ``address:<prefix>/64`` (IPv6); an unparseable address is kept as given."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "address:" + address[:80]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return f"address:{ip.ipv4_mapped}"
        return f"address:{ipaddress.IPv6Network((ip, 64), strict=False)}"
    return f"address:{ip}"


def login_keys(email: str, address: str) -> dict[str, Limit]:
    return {email_key(email): EMAIL_LIMIT, address_key(address): ADDRESS_LIMIT}


def _upsert(dialect: str) -> Any:
    return (postgresql if dialect == "postgresql" else sqlite).insert(LoginThrottle)


async def charge(platform: Platform, keys: dict[str, Limit], now: datetime | None = None) -> None:
    """Count one attempt against every key, before the password is checked (one transaction).

    :raises LoginThrottled: some key is locked, or this attempt went past its limit and locked it; the
        attempt must not go on to check the password.
    """
    now = now or utcnow()
    t = LoginThrottle.__table__.c
    at = literal(now, UTCDateTime())
    locked_until: list[datetime] = []
    dialect = platform.engine.dialect.name
    async with platform.sessions.platform() as session:
        for key in sorted(keys):  # one order everywhere: two attempts never wait on each other's rows
            limit = keys[key]
            locked = and_(t.locked_until.is_not(None), t.locked_until > at)
            expired = t.window_started_at <= literal(now - limit.window, UTCDateTime())
            failures = case((locked, t.failures), (expired, 1), else_=t.failures + 1)
            statement = (
                _upsert(dialect)
                .values(key=key, failures=1, window_started_at=now, locked_until=None)
                .on_conflict_do_update(
                    index_elements=[t.key],
                    set_={
                        "failures": failures,
                        "window_started_at": case(
                            (locked, t.window_started_at), (expired, at), else_=t.window_started_at
                        ),
                        "locked_until": case(
                            (locked, t.locked_until),
                            (failures > limit.attempts, literal(now + limit.lock, UTCDateTime())),
                            else_=literal(None, UTCDateTime()),
                        ),
                    },
                )
                .returning(t.locked_until)
            )
            until = (await session.execute(statement)).scalar_one()
            if until is not None and until > now:
                locked_until.append(until)
                if until == now + limit.lock:  # this attempt locked it
                    log.warning("auth.login_locked", key_kind=key.split(":", 1)[0], until=until.isoformat())
    if locked_until:
        raise LoginThrottled(max(1, math.ceil((max(locked_until) - now).total_seconds())))


async def settle_success(platform: Platform, keys: dict[str, Limit]) -> None:
    """After a successful login: clear the email's count, give the address its charge back."""
    email = [k for k in keys if k.startswith("email:")]
    others = [k for k in keys if not k.startswith("email:")]
    async with platform.sessions.platform() as session:
        if email:
            await session.execute(delete(LoginThrottle).where(LoginThrottle.key.in_(email)))
        if others:
            await session.execute(
                update(LoginThrottle)
                .where(LoginThrottle.key.in_(others), LoginThrottle.failures > 0)
                .values(failures=LoginThrottle.failures - 1)
            )


async def failures(platform: Platform, key: str) -> int:
    """Attempts charged to ``key`` in its current window (0 when none)."""
    async with platform.sessions.platform() as session:
        row = await session.get(LoginThrottle, key)
        return 0 if row is None else row.failures


async def purge(platform: Platform, now: datetime | None = None) -> int:
    """Delete rows whose window and lock are both over (for a periodic job). Returns how many."""
    now = now or utcnow()
    longest = max(EMAIL_LIMIT.window, ADDRESS_LIMIT.window)
    async with platform.sessions.platform() as session:
        result = await session.execute(
            delete(LoginThrottle).where(
                LoginThrottle.window_started_at <= now - longest,
                or_(LoginThrottle.locked_until.is_(None), LoginThrottle.locked_until <= now),
            )
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
