"""Signing keys for access tokens: EC P-256 (ES256) keys in a ring that rotates without downtime.

A key goes through three stages:

- **published**: from the moment it is put in the ring it is in the JWKS, but does not sign yet. The
  pre-publication period lets relying parties that cache the JWKS pick it up before any token needs it;
- **signing**: from ``activates_at`` on, :meth:`KeyRing.current` picks the newest key that is active, so the
  previous key stops signing when its successor activates (that time becomes its ``retires_at``);
- **retired**: it signs nothing more but stays in the JWKS until every token it signed has expired,
  ``retires_at`` + its ``token_lifetime`` + :data:`MAX_CLOCK_SKEW`, and then drops out.

The ring is stored as one opaque blob (:func:`serialise`), private keys encrypted with Fernet under a key derived
by HKDF-SHA256 from the platform secret. Storage is someone else's business: anything that implements
:class:`KeyRingStore` (a database row, a file) will do. Nothing here touches a database.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any, Literal, Protocol

import msgspec
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from joserfc.errors import JoseError
from joserfc.jwk import ECKey

from core.exceptions import Conflict, ImproperlyConfigured

ALGORITHM = "ES256"
CURVE = "P-256"
MAX_TOKEN_LIFETIME = timedelta(hours=1)
"""No access token lives longer than this, whoever signed it; validation refuses longer ones."""
MAX_CLOCK_SKEW = timedelta(seconds=60)
"""The most leeway a validator may allow; retired keys stay published this much longer too."""
DEFAULT_PREPUBLISH = timedelta(days=1)
"""How long a new key is in the JWKS before it signs: longer than any relying party caches the JWKS."""
MIN_SECRET_BYTES = 32
_HKDF_INFO = b"tsunagu signing-key ring v1"
_FORMAT = "tsunagu-keyring/1"


class KeyRingUnreadable(ImproperlyConfigured):
    """The stored key ring cannot be decrypted (wrong platform secret) or is not a key ring."""

    title = "Signing keys unreadable"


class NoActiveSigningKey(ImproperlyConfigured):
    """No key of the ring is active yet: nothing can be signed until one is."""

    title = "No active signing key"


def _require_aware(name: str, value: datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a time-zone aware datetime, got naive {value!r}")


class SigningKey(msgspec.Struct, kw_only=True, frozen=True, dict=True):
    """One ES256 key pair. Build new ones with :func:`generate_key`; the private part never leaves the ring
    unencrypted (:func:`serialise`) and is never in :meth:`public_jwk` or the repr."""

    kid: str
    """Key id: the RFC 7638 thumbprint of the public key for generated keys."""
    private_pem: str
    """The private key, PKCS#8 PEM."""
    created_at: datetime
    activates_at: datetime
    """When it starts signing; before that it is only published."""
    retires_at: datetime | None = None
    """When it stopped (or will stop) signing: its successor's ``activates_at``. ``None`` while it has none."""
    token_lifetime: timedelta = MAX_TOKEN_LIFETIME
    """The longest lifetime of a token this key signs; it stays published this long after ``retires_at``."""

    def __post_init__(self) -> None:
        if not self.kid:
            raise ImproperlyConfigured("signing key kid must not be empty")
        for name in ("created_at", "activates_at", "retires_at"):
            value = getattr(self, name)
            if value is not None:
                _require_aware(f"signing key {self.kid}: {name}", value)
        if self.activates_at < self.created_at:
            raise ImproperlyConfigured(f"signing key {self.kid}: activates_at must not be before created_at")
        if self.retires_at is not None and self.retires_at < self.activates_at:
            raise ImproperlyConfigured(f"signing key {self.kid}: retires_at must not be before activates_at")
        if not timedelta(0) < self.token_lifetime <= MAX_TOKEN_LIFETIME:
            raise ImproperlyConfigured(
                f"signing key {self.kid}: token_lifetime must be more than 0 and at most "
                f"{MAX_TOKEN_LIFETIME}, got {self.token_lifetime}"
            )
        # Parse now, so that a bad key fails where the ring is loaded, not at the first request it signs.
        _ = self.private_key

    def __repr__(self) -> str:
        return (
            f"SigningKey(kid={self.kid!r}, activates_at={self.activates_at.isoformat()}, "
            f"retires_at={self.retires_at.isoformat() if self.retires_at else None})"
        )

    @cached_property
    def private_key(self) -> ECKey:
        """The key pair as a joserfc key, for signing."""
        try:
            raw = serialization.load_pem_private_key(self.private_pem.encode(), password=None)
        except (ValueError, TypeError) as exc:
            raise ImproperlyConfigured(
                f"signing key {self.kid}: private_pem is not a PEM private key"
            ) from exc
        if not isinstance(raw, ec.EllipticCurvePrivateKey) or not isinstance(raw.curve, ec.SECP256R1):
            raise ImproperlyConfigured(f"signing key {self.kid}: only EC {CURVE} keys are supported")
        return ECKey.import_key(raw)

    @cached_property
    def public_key(self) -> ECKey:
        """The public half only, as a joserfc key: what verification uses."""
        return ECKey.import_key(self.private_key.public_key)

    def public_jwk(self) -> dict[str, str]:
        """The public JWK as published: kty, crv, x, y, kid, use, alg. Never ``d``."""
        data = self.public_key.as_dict(private=False)
        return {
            "kty": "EC",
            "crv": CURVE,
            "x": str(data["x"]),
            "y": str(data["y"]),
            "kid": self.kid,
            "use": "sig",
            "alg": ALGORITHM,
        }

    def published_until(self) -> datetime | None:
        """When it drops out of the JWKS; ``None`` while it is not retired."""
        if self.retires_at is None:
            return None
        return self.retires_at + self.token_lifetime + MAX_CLOCK_SKEW

    def is_published(self, now: datetime) -> bool:
        until = self.published_until()
        return until is None or now < until

    def is_signing(self, now: datetime) -> bool:
        return self.activates_at <= now and (self.retires_at is None or now < self.retires_at)


def generate_key(
    now: datetime, *, activates_at: datetime | None = None, token_lifetime: timedelta = MAX_TOKEN_LIFETIME
) -> SigningKey:
    """A fresh P-256 key created at ``now``, signing from ``activates_at`` (default: at once)."""
    _require_aware("now", now)
    raw = ec.generate_private_key(ec.SECP256R1())
    pem = raw.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return SigningKey(
        kid=ECKey.import_key(raw.public_key()).thumbprint(),
        private_pem=pem,
        created_at=now,
        activates_at=now if activates_at is None else activates_at,
        token_lifetime=token_lifetime,
    )


class KeyRing(msgspec.Struct, kw_only=True, frozen=True, dict=True):
    """All signing keys, in creation order: the one that signs, the ones waiting, the retired ones still
    published. Immutable: :meth:`rotate` returns a new ring."""

    keys: tuple[SigningKey, ...] = ()

    def __post_init__(self) -> None:
        kids = [key.kid for key in self.keys]
        if len(set(kids)) != len(kids):
            raise ImproperlyConfigured("signing key ring has two keys with the same kid")

    @classmethod
    def create(cls, now: datetime, *, token_lifetime: timedelta = MAX_TOKEN_LIFETIME) -> KeyRing:
        """A ring with one key that signs from ``now``: for a platform's first start."""
        return cls(keys=(generate_key(now, token_lifetime=token_lifetime),))

    @cached_property
    def _by_kid(self) -> dict[str, SigningKey]:
        return {key.kid: key for key in self.keys}

    def current(self, now: datetime) -> SigningKey:
        """The key that signs at ``now``: the newest one whose activation time has passed.

        :raises NoActiveSigningKey: no key has activated yet (or every key has retired).
        """
        _require_aware("now", now)
        signing = [key for key in self.keys if key.is_signing(now)]
        if not signing:
            raise NoActiveSigningKey(f"no signing key is active at {now.isoformat()}; rotate the key ring")
        return max(signing, key=lambda key: (key.activates_at, key.created_at))

    def published(self, now: datetime) -> tuple[SigningKey, ...]:
        """Keys in the JWKS at ``now``: waiting, signing, and retired ones whose tokens may still be valid."""
        _require_aware("now", now)
        return tuple(key for key in self.keys if key.is_published(now))

    def verification_key(self, kid: str, now: datetime) -> ECKey | None:
        """The public key published under ``kid`` at ``now``, or ``None``."""
        _require_aware("now", now)
        key = self._by_kid.get(kid)
        if key is None or not key.is_published(now):
            return None
        return key.public_key

    def jwks(self, now: datetime) -> dict[str, list[dict[str, str]]]:
        """The public JWK Set to serve at ``/.well-known/jwks.json``: public members only."""
        return {"keys": [key.public_jwk() for key in self.published(now)]}

    def rotate(
        self,
        now: datetime,
        *,
        prepublish: timedelta = DEFAULT_PREPUBLISH,
        token_lifetime: timedelta | None = None,
    ) -> KeyRing:
        """A new ring with a new key that is published at once and signs from ``now + prepublish``.

        Keys without a retirement time retire when the new key activates; a waiting key that would never sign
        (it activates after the new one) is dropped, and so are keys no longer published.

        :param token_lifetime: the longest lifetime of tokens the new key signs; default: that of the newest key
            not yet retired (:data:`MAX_TOKEN_LIFETIME` for an empty ring).
        """
        _require_aware("now", now)
        if prepublish < timedelta(0):
            raise ImproperlyConfigured(f"prepublish must not be negative, got {prepublish}")
        if token_lifetime is None:
            waiting_or_signing = [key for key in self.keys if key.retires_at is None]
            token_lifetime = (
                waiting_or_signing[-1].token_lifetime if waiting_or_signing else MAX_TOKEN_LIFETIME
            )
        new = generate_key(now, activates_at=now + prepublish, token_lifetime=token_lifetime)
        kept: list[SigningKey] = []
        for key in self.keys:
            if not key.is_published(now) or key.activates_at >= new.activates_at:
                continue
            if key.retires_at is None or key.retires_at > new.activates_at:
                key = msgspec.structs.replace(key, retires_at=new.activates_at)
            kept.append(key)
        return KeyRing(keys=(*kept, new))


def jwks_verification_key(jwks: Mapping[str, Any], kid: str) -> ECKey | None:
    """The public ES256 key published under ``kid`` in a JWK Set (as :meth:`KeyRing.jwks` makes), or ``None``.

    Only the public members are read, whatever else the entry holds.

    :raises ImproperlyConfigured: the entry for ``kid`` is not an ES256 signing key.
    """
    keys = jwks.get("keys")
    if not isinstance(keys, list):
        raise ImproperlyConfigured("JWK Set must have a 'keys' list")
    for entry in keys:
        if not isinstance(entry, Mapping) or entry.get("kid") != kid:
            continue
        if (
            entry.get("kty") != "EC"
            or entry.get("crv") != CURVE
            or entry.get("alg", ALGORITHM) != ALGORITHM
            or entry.get("use", "sig") != "sig"
        ):
            raise ImproperlyConfigured(f"JWK Set entry {kid!r} is not an {ALGORITHM} signing key")
        try:
            return ECKey.import_key({"kty": "EC", "crv": CURVE, "x": entry["x"], "y": entry["y"]})
        except (JoseError, KeyError, ValueError, TypeError) as exc:
            raise ImproperlyConfigured(f"JWK Set entry {kid!r} has no valid public key") from exc
    return None


# --- Storage ----------------------------------------------------------------------------------------------


class _Stored(msgspec.Struct, kw_only=True, frozen=True):
    format: Literal["tsunagu-keyring/1"]
    ring: KeyRing


def _fernet(secret: bytes) -> Fernet:
    if not isinstance(secret, bytes) or len(secret) < MIN_SECRET_BYTES:
        length = len(secret) if isinstance(secret, bytes) else type(secret).__name__
        raise ImproperlyConfigured(
            f"the platform secret must be at least {MIN_SECRET_BYTES} bytes, got {length}"
        )
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(secret)
    return Fernet(base64.urlsafe_b64encode(derived))


def serialise(ring: KeyRing, secret: bytes) -> bytes:
    """The ring as one encrypted blob for storage (Fernet: AES-128-CBC + HMAC-SHA256, key from HKDF(secret)).

    :raises ImproperlyConfigured: ``secret`` is shorter than :data:`MIN_SECRET_BYTES`.
    """
    return _fernet(secret).encrypt(msgspec.json.encode(_Stored(format=_FORMAT, ring=ring)))


def deserialise(blob: bytes, secret: bytes) -> KeyRing:
    """The ring stored by :func:`serialise` under the same secret.

    :raises KeyRingUnreadable: the secret is not the one it was stored with, or the blob is not a key ring.
    """
    fernet = _fernet(secret)
    try:
        plain = fernet.decrypt(blob)
    except (InvalidToken, TypeError, ValueError) as exc:
        raise KeyRingUnreadable(
            "the stored signing keys cannot be decrypted with this platform secret: the secret was changed, "
            "or the stored key ring is damaged"
        ) from exc
    try:
        return msgspec.json.decode(plain, type=_Stored).ring
    except (msgspec.DecodeError, msgspec.ValidationError, ImproperlyConfigured) as exc:
        raise KeyRingUnreadable(f"the stored signing key ring is not valid: {exc}") from exc


class KeyRingStore(Protocol):
    """Where the encrypted ring lives. Implemented outside this module (e.g. by a one-row table)."""

    async def load(self) -> bytes | None:
        """The stored blob, or ``None`` when nothing is stored yet."""
        ...

    async def save(self, blob: bytes, *, replaces: bytes | None) -> bool:
        """Store ``blob`` if what is stored is still ``replaces`` (``None``: nothing); ``False`` if it is not,
        because another process wrote first. Compare-and-swap, so two rotations never lose a key."""
        ...


async def load_ring(store: KeyRingStore, secret: bytes, *, now: datetime) -> KeyRing:
    """The stored ring; on first use, a new ring with one active key, stored (another process's wins a race).

    :raises KeyRingUnreadable: see :func:`deserialise`.
    """
    blob = await store.load()
    if blob is not None:
        return deserialise(blob, secret)
    ring = KeyRing.create(now)
    if await store.save(serialise(ring, secret), replaces=None):
        return ring
    stored = await store.load()
    if stored is None:
        raise Conflict("the signing key ring was created and removed concurrently; try again")
    return deserialise(stored, secret)


async def rotate_stored(
    store: KeyRingStore,
    secret: bytes,
    *,
    now: datetime,
    prepublish: timedelta = DEFAULT_PREPUBLISH,
    token_lifetime: timedelta | None = None,
) -> KeyRing:
    """Rotate the stored ring and store the result. With nothing stored, store a new ring whose key signs at
    once instead: no relying party can have cached a JWKS that does not exist yet.

    :raises Conflict: another process changed the ring meanwhile; nothing was stored.
    :raises KeyRingUnreadable: see :func:`deserialise`.
    """
    blob = await store.load()
    if blob is None:
        rotated = KeyRing.create(now, token_lifetime=token_lifetime or MAX_TOKEN_LIFETIME)
    else:
        rotated = deserialise(blob, secret).rotate(now, prepublish=prepublish, token_lifetime=token_lifetime)
    if not await store.save(serialise(rotated, secret), replaces=blob):
        raise Conflict(
            "the signing key ring changed while it was being rotated; nothing was changed, try again"
        )
    return rotated
