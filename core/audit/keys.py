"""The audit log's keys, derived (HKDF-SHA256) from ``TSUNAGU_SECRET_KEY``, and how a session finds them.

Two keys with separate purposes: one MACs events and chain entries, one pseudonymises the payload values a
caller marks as personal. Someone with only database access has neither, so can neither forge nor edit an
entry undetected, nor test guesses against a pseudonym.

:func:`core.audit.record` is given only the caller's session; the keys are found through the session's engine,
to which the :class:`~core.platform.Platform` bound them when it was made (:func:`bind_keys`). Derivation is
lazy: a command that never touches the audit log never reads the secret.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import weakref
from collections.abc import Callable
from typing import Any

from core.exceptions import ImproperlyConfigured

MAC_INFO = b"tsunagu audit mac v1"
PSEUDONYM_INFO = b"tsunagu audit pseudonym v1"


def hkdf_sha256(secret: bytes, info: bytes, length: int = 32, salt: bytes = b"") -> bytes:
    """HKDF (RFC 5869) with SHA-256: extract, then expand to ``length`` bytes."""
    prk = hmac.new(salt or bytes(32), secret, hashlib.sha256).digest()
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        out += block
        counter += 1
    return out[:length]


class AuditKeys:
    """The two derived keys, computed from the secret on first use (and a flag: events recorded lately)."""

    def __init__(self, secret: Callable[[], bytes]) -> None:
        self._secret = secret
        self._keys: tuple[bytes, bytes] | None = None
        self._lock = threading.Lock()
        self.recorded = False
        """Set by :func:`core.audit.record` in this process, cleared by the sealer: whether to look now."""

    @classmethod
    def from_secret(cls, secret: bytes) -> AuditKeys:
        return cls(lambda: secret)

    def _derive(self) -> tuple[bytes, bytes]:
        if self._keys is None:
            with self._lock:
                if self._keys is None:
                    secret = self._secret()
                    self._keys = (hkdf_sha256(secret, MAC_INFO), hkdf_sha256(secret, PSEUDONYM_INFO))
        return self._keys

    @property
    def mac_key(self) -> bytes:
        return self._derive()[0]

    @property
    def pseudonym_key(self) -> bytes:
        return self._derive()[1]

    def __repr__(self) -> str:  # never the keys
        return "AuditKeys(***)"


_BOUND: weakref.WeakKeyDictionary[Any, AuditKeys] = weakref.WeakKeyDictionary()


def _sync_engine(bind: Any) -> Any:
    bind = getattr(bind, "sync_engine", bind)  # AsyncEngine -> Engine
    return getattr(bind, "engine", bind)  # Connection -> Engine


def bind_keys(engine: Any, keys: AuditKeys) -> None:
    """Let sessions on ``engine`` (async or sync) record and seal with ``keys``."""
    _BOUND[_sync_engine(engine)] = keys


def keys_for(session: Any) -> AuditKeys:
    """The keys bound to the engine of ``session`` (an ``AsyncSession`` or a ``Session``).

    :raises ImproperlyConfigured: the engine was not made by :func:`core.platform.create_platform`.
    """
    bind = getattr(session, "bind", None)
    if bind is None and hasattr(session, "get_bind"):
        bind = session.get_bind()
    keys = _BOUND.get(_sync_engine(bind)) if bind is not None else None
    if keys is None:
        raise ImproperlyConfigured(
            "this session's database engine has no audit keys: open sessions through a Platform "
            "(core.platform.create_platform)"
        )
    return keys
