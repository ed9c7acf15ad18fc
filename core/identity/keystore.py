"""The platform's signing key ring: stored in the one ``signing_keyrings`` row, cached in each process.

:class:`DatabaseKeyRingStore` implements :class:`~core.identity.keys.KeyRingStore` on that row, with
compare-and-swap (an ``UPDATE ... WHERE blob = <what was read>``), so two processes rotating at once never lose a
key. :func:`signing_keys` gives each platform one :class:`SigningKeys`, the process's copy of the ring:

- it is read again after :data:`RING_MAX_AGE`, so a rotation made elsewhere (``tsunagu keys rotate``) reaches
  every process long before the new key activates (rotations pre-publish for a day by default);
- a token signed by a key this process does not know makes it read the ring at once, at most once per
  :data:`UNKNOWN_KID_RELOAD_INTERVAL`, so a flood of forged key ids cannot turn into a flood of queries.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from core.db.base import utcnow
from core.exceptions import Conflict
from core.identity.keys import (
    DEFAULT_PREPUBLISH,
    KeyRing,
    KeyRingUnreadable,
    deserialise,
    load_ring,
    rotate_stored,
    serialise,
)
from core.identity.models import SigningKeyRing
from core.settings import secret_key_bytes

if TYPE_CHECKING:
    from core.db.session import SessionFactory
    from core.platform import Platform

ROW_ID = 1
RING_MAX_AGE = 30.0
"""Seconds a process uses its copy of the ring before reading it again."""
UNKNOWN_KID_RELOAD_INTERVAL = 5.0
"""At most one read of the ring per this many seconds because a token named a key id not in the copy."""


class DatabaseKeyRingStore:
    """The encrypted ring in the one row of ``signing_keyrings`` (a platform-wide table)."""

    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions

    async def load(self) -> bytes | None:
        async with self._sessions.platform() as session:
            return await session.scalar(select(SigningKeyRing.blob).where(SigningKeyRing.id == ROW_ID))

    async def save(self, blob: bytes, *, replaces: bytes | None) -> bool:
        if replaces is None:
            try:
                async with self._sessions.platform() as session:
                    session.add(SigningKeyRing(id=ROW_ID, blob=blob))
            except IntegrityError:  # another process stored the first ring meanwhile
                return False
            return True
        async with self._sessions.platform() as session:
            result = await session.execute(
                update(SigningKeyRing)
                .where(SigningKeyRing.id == ROW_ID, SigningKeyRing.blob == replaces)
                .values(blob=blob, updated_at=utcnow())
            )
            return result.rowcount == 1  # type: ignore[attr-defined]


class SigningKeys:
    """One process's view of the platform's key ring. Get it with :func:`signing_keys`."""

    def __init__(self, platform: Platform, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.store = DatabaseKeyRingStore(platform.sessions)
        self._settings = platform.settings
        self._secret: bytes | None = None
        self._clock = clock
        self._ring: KeyRing | None = None
        self._loaded_at = float("-inf")
        self._unknown_kid_loaded_at = float("-inf")
        self._lock = asyncio.Lock()

    @property
    def secret(self) -> bytes:
        """:raises ImproperlyConfigured: see :func:`core.settings.secret_key_bytes`."""
        if self._secret is None:
            self._secret = secret_key_bytes(self._settings)
        return self._secret

    async def ring(self) -> KeyRing:
        """The ring, read again if this copy is older than :data:`RING_MAX_AGE`; made on first use.

        :raises KeyRingUnreadable: the stored ring was encrypted under another secret.
        :raises ImproperlyConfigured: no secret (production without ``TSUNAGU_SECRET_KEY``).
        """
        ring = self._ring
        if ring is not None and self._clock() - self._loaded_at < RING_MAX_AGE:
            return ring
        return await self._reload()

    async def ring_for(self, kid: str | None, now: datetime) -> KeyRing:
        """The ring to verify a token signed under ``kid``: read again first if this copy does not publish
        ``kid``, unless a key id unknown to it made it read the ring in the last
        :data:`UNKNOWN_KID_RELOAD_INTERVAL` seconds."""
        ring = await self.ring()
        if kid is None or ring.verification_key(kid, now) is not None:
            return ring
        async with self._lock:
            current = self._ring or ring
            if current is not ring and current.verification_key(kid, now) is not None:
                return current  # read again meanwhile, by another request
            if self._clock() - self._unknown_kid_loaded_at < UNKNOWN_KID_RELOAD_INTERVAL:
                return current
            self._unknown_kid_loaded_at = self._clock()
            return await self._load()

    async def _reload(self) -> KeyRing:
        async with self._lock:  # one query for all the requests that found the copy stale at once
            if self._ring is not None and self._clock() - self._loaded_at < RING_MAX_AGE:
                return self._ring
            return await self._load()

    async def _load(self) -> KeyRing:
        ring = await load_ring(self.store, self.secret, now=utcnow())
        self._ring, self._loaded_at = ring, self._clock()
        return ring

    def forget(self) -> None:
        """Drop this process's copy: the next use reads the ring."""
        self._ring, self._loaded_at = None, float("-inf")

    async def stored(self) -> KeyRing | None:
        """The stored ring as it is now (no cache, nothing created); ``None`` if none is stored yet.

        :raises KeyRingUnreadable: the stored ring was encrypted under another secret.
        """
        blob = await self.store.load()
        return None if blob is None else deserialise(blob, self.secret)

    async def rotate(
        self,
        *,
        now: datetime | None = None,
        prepublish: timedelta = DEFAULT_PREPUBLISH,
        discard_unreadable: bool = False,
    ) -> KeyRing:
        """Add a new key that is published at once and signs from ``now + prepublish`` (see
        :meth:`KeyRing.rotate`); with no ring stored yet, store one whose key signs at once.

        :param discard_unreadable: if the stored ring cannot be decrypted (the secret was changed or lost),
            replace it with a new ring whose key signs at once. Every token issued before stops working.
        :raises Conflict: another process changed the ring meanwhile; nothing was stored.
        :raises KeyRingUnreadable: the stored ring was encrypted under another secret (without
            ``discard_unreadable``).
        """
        now = now or utcnow()
        try:
            ring = await rotate_stored(self.store, self.secret, now=now, prepublish=prepublish)
        except KeyRingUnreadable:
            if not discard_unreadable:
                raise
            blob = await self.store.load()
            ring = KeyRing.create(now)
            if not await self.store.save(serialise(ring, self.secret), replaces=blob):
                raise Conflict(
                    "the signing key ring changed while it was being replaced; nothing was changed, try again"
                ) from None
        self.forget()
        return ring


_BY_PLATFORM: weakref.WeakKeyDictionary[Platform, SigningKeys] = weakref.WeakKeyDictionary()


def signing_keys(platform: Platform) -> SigningKeys:
    """The process's :class:`SigningKeys` of ``platform`` (one per platform, made on first use)."""
    keys = _BY_PLATFORM.get(platform)
    if keys is None:
        keys = _BY_PLATFORM[platform] = SigningKeys(platform)
    return keys
