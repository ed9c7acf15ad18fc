"""Signing keys: the ring's schedule (pre-publish, sign, retire, drop out), the public JWKS, encrypted storage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st
from joserfc.jwk import ECKey

from core.exceptions import Conflict, ImproperlyConfigured
from core.identity.keys import (
    MAX_CLOCK_SKEW,
    MAX_TOKEN_LIFETIME,
    KeyRing,
    KeyRingUnreadable,
    NoActiveSigningKey,
    SigningKey,
    deserialise,
    generate_key,
    jwks_verification_key,
    load_ring,
    rotate_stored,
    serialise,
)

T0 = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)
SECRET = b"platform secret for tests, 32+ bytes long"
PUBLIC_MEMBERS = {"kty", "crv", "x", "y", "kid", "use", "alg"}


def kids(ring: KeyRing, now: datetime) -> list[str]:
    return [jwk["kid"] for jwk in ring.jwks(now)["keys"]]


def private_d(key: SigningKey) -> str:
    return str(key.private_key.as_dict(private=True)["d"])


def test_a_generated_key_is_p256_named_by_its_thumbprint_and_signs_at_once() -> None:
    key = generate_key(T0)
    jwk = key.public_jwk()
    assert (jwk["kty"], jwk["crv"], jwk["alg"], jwk["use"]) == ("EC", "P-256", "ES256", "sig")
    assert (
        key.kid == jwk["kid"] == ECKey.import_key({k: jwk[k] for k in ("kty", "crv", "x", "y")}).thumbprint()
    )
    assert KeyRing(keys=(key,)).current(T0) == key
    assert generate_key(T0).kid != key.kid


def test_the_repr_of_a_key_and_a_ring_shows_no_private_key() -> None:
    ring = KeyRing.create(T0)
    key = ring.keys[0]
    for text in (repr(key), repr(ring), str(ring)):
        assert "PRIVATE" not in text and private_d(key) not in text
        assert key.kid in text


@settings(max_examples=40, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=90 * 24),  # hours since the previous rotation
            st.integers(min_value=0, max_value=72),  # prepublish, hours
            st.sampled_from([timedelta(minutes=5), timedelta(minutes=30), MAX_TOKEN_LIFETIME]),
        ),
        max_size=5,
    ),
    look=st.integers(min_value=0, max_value=120 * 24),
)
def test_the_jwks_holds_public_members_only_under_any_rotation_schedule(
    steps: list[tuple[int, int, timedelta]], look: int
) -> None:
    ring = KeyRing.create(T0)
    now = T0
    for hours, prepublish, lifetime in steps:
        now += timedelta(hours=hours)
        ring = ring.rotate(now, prepublish=timedelta(hours=prepublish), token_lifetime=lifetime)
    at = now + timedelta(hours=look)  # the ring is a plan from its last rotation on
    secrets_ = {private_d(key) for key in ring.keys}
    for jwk in ring.jwks(at)["keys"]:
        assert set(jwk) == PUBLIC_MEMBERS
        assert "d" not in jwk and not secrets_ & set(jwk.values())
        # What is published is exactly the public half of the ring's key of that kid.
        key = next(key for key in ring.keys if key.kid == jwk["kid"])
        assert ECKey.import_key(dict(jwk)).public_key == key.private_key.public_key
    # From the last rotation on, some key signs at every moment, and it is published.
    assert ring.current(at).kid in kids(ring, at)


def test_a_new_key_is_published_for_the_prepublication_period_before_it_signs() -> None:
    ring = KeyRing.create(T0)
    old = ring.keys[0]
    rotated = ring.rotate(T0 + 30 * DAY, prepublish=DAY)
    new = rotated.keys[-1]
    assert new.activates_at == T0 + 31 * DAY and old.kid != new.kid
    during = T0 + 30 * DAY + timedelta(hours=12)
    assert kids(rotated, during) == [old.kid, new.kid]
    assert rotated.current(during).kid == old.kid
    assert rotated.current(new.activates_at - timedelta(microseconds=1)).kid == old.kid
    assert rotated.current(new.activates_at).kid == new.kid


def test_a_retired_key_stays_published_until_its_tokens_have_expired_then_drops_out() -> None:
    rotated = KeyRing.create(T0).rotate(T0 + 30 * DAY, prepublish=DAY, token_lifetime=timedelta(minutes=15))
    old, new = rotated.keys
    assert old.retires_at == new.activates_at
    drop = old.retires_at + MAX_TOKEN_LIFETIME + MAX_CLOCK_SKEW
    assert old.published_until() == drop
    assert kids(rotated, drop - timedelta(seconds=1)) == [old.kid, new.kid]
    assert rotated.verification_key(old.kid, drop - timedelta(seconds=1)) is not None
    assert kids(rotated, drop) == [new.kid]
    assert rotated.verification_key(old.kid, drop) is None
    # The new key was made for 15-minute tokens: once retired, it drops out 15 minutes (+ skew) after.
    again = rotated.rotate(T0 + 60 * DAY, prepublish=timedelta(0))
    assert again.keys[-1].token_lifetime == timedelta(minutes=15)
    assert again.keys[0].kid == new.kid
    assert again.keys[0].published_until() == T0 + 60 * DAY + timedelta(minutes=15) + MAX_CLOCK_SKEW


def test_rotation_forgets_keys_that_dropped_out_and_never_changes_a_past_retirement() -> None:
    first = KeyRing.create(T0)
    second = first.rotate(T0 + 30 * DAY, prepublish=DAY)
    third = second.rotate(T0 + 60 * DAY, prepublish=DAY)
    assert [key.kid for key in third.keys] == [second.keys[1].kid, third.keys[1].kid]
    assert third.keys[0].retires_at == T0 + 61 * DAY
    # Two rotations inside one prepublication period: the first new key signs between the two activations.
    a = first.rotate(T0 + DAY, prepublish=DAY)
    b = a.rotate(T0 + DAY + timedelta(hours=1), prepublish=DAY)
    assert [key.retires_at for key in b.keys] == [T0 + 2 * DAY, T0 + 2 * DAY + timedelta(hours=1), None]
    assert b.current(T0 + 2 * DAY).kid == a.keys[1].kid


def test_a_waiting_key_that_would_never_sign_is_dropped_when_a_sooner_key_is_scheduled() -> None:
    slow = KeyRing.create(T0).rotate(T0 + DAY, prepublish=7 * DAY)
    fast = slow.rotate(T0 + 2 * DAY, prepublish=timedelta(hours=1))
    assert [key.kid for key in fast.keys] == [slow.keys[0].kid, fast.keys[-1].kid]
    assert fast.keys[0].retires_at == T0 + 2 * DAY + timedelta(hours=1)


def test_no_key_signs_before_the_first_activation() -> None:
    with pytest.raises(NoActiveSigningKey):
        KeyRing().current(T0)
    ring = KeyRing(keys=(generate_key(T0, activates_at=T0 + DAY),))
    with pytest.raises(NoActiveSigningKey):
        ring.current(T0)
    assert kids(ring, T0) == [ring.keys[0].kid]


def test_naive_times_and_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        KeyRing.create(T0).current(datetime(2026, 4, 1))
    with pytest.raises(ValueError, match="aware"):
        generate_key(datetime(2026, 4, 1))
    with pytest.raises(ImproperlyConfigured, match="prepublish"):
        KeyRing.create(T0).rotate(T0, prepublish=-DAY)
    with pytest.raises(ImproperlyConfigured, match="token_lifetime"):
        generate_key(T0, token_lifetime=2 * MAX_TOKEN_LIFETIME)
    with pytest.raises(ImproperlyConfigured, match="same kid"):
        key = generate_key(T0)
        KeyRing(keys=(key, key))


def test_only_p256_private_keys_are_accepted() -> None:
    p384 = ec.generate_private_key(ec.SECP384R1())
    pem = p384.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    with pytest.raises(ImproperlyConfigured, match="P-256"):
        SigningKey(kid="k", private_pem=pem, created_at=T0, activates_at=T0)
    with pytest.raises(ImproperlyConfigured, match="PEM"):
        SigningKey(kid="k", private_pem="not a key", created_at=T0, activates_at=T0)


def test_the_ring_round_trips_through_storage_encrypted() -> None:
    ring = KeyRing.create(T0).rotate(T0 + DAY, prepublish=DAY, token_lifetime=timedelta(minutes=20))
    blob = serialise(ring, SECRET)
    assert deserialise(blob, SECRET) == ring
    assert b"PRIVATE KEY" not in blob and ring.keys[0].kid.encode() not in blob
    assert serialise(ring, SECRET) != blob  # a fresh IV every time


def test_a_wrong_secret_is_a_clear_error_not_garbage() -> None:
    blob = serialise(KeyRing.create(T0), SECRET)
    with pytest.raises(KeyRingUnreadable, match="platform secret"):
        deserialise(blob, SECRET + b"!")
    with pytest.raises(KeyRingUnreadable):
        deserialise(blob[:-4] + b"AAAA", SECRET)
    with pytest.raises(KeyRingUnreadable):
        deserialise(b"not a blob", SECRET)
    with pytest.raises(ImproperlyConfigured, match="at least 32 bytes, got 5"):
        serialise(KeyRing.create(T0), b"short")


def test_a_decryptable_blob_that_is_not_a_ring_is_refused() -> None:
    from core.identity.keys import _fernet

    for plain in (
        b"{}",
        b"[1]",
        msgspec.json.encode({"format": "tsunagu-keyring/1", "ring": {"keys": [{}]}}),
    ):
        with pytest.raises(KeyRingUnreadable, match="not valid"):
            deserialise(_fernet(SECRET).encrypt(plain), SECRET)


def test_a_jwks_entry_is_read_for_its_public_members_only() -> None:
    key = generate_key(T0)
    leaked = {**key.public_jwk(), "d": private_d(key)}
    public = jwks_verification_key({"keys": [leaked]}, key.kid)
    assert public is not None and not public.is_private
    assert jwks_verification_key({"keys": [leaked]}, "other") is None
    for wrong in ({"kty": "RSA"}, {"alg": "HS256"}, {"use": "enc"}, {"crv": "P-384"}, {"x": "AAAA"}):
        with pytest.raises(ImproperlyConfigured, match=key.kid):
            jwks_verification_key({"keys": [{**key.public_jwk(), **wrong}]}, key.kid)
    with pytest.raises(ImproperlyConfigured, match="keys"):
        jwks_verification_key({}, key.kid)


class MemoryStore:
    """A :class:`~core.identity.keys.KeyRingStore` in memory, with the compare-and-swap the protocol asks for."""

    def __init__(self) -> None:
        self.blob: bytes | None = None
        self.before_save: bytes | None = None  # written "by another process" just before our save

    async def load(self) -> bytes | None:
        return self.blob

    async def save(self, blob: bytes, *, replaces: bytes | None) -> bool:
        if self.before_save is not None:
            self.blob, self.before_save = self.before_save, None
        if self.blob != replaces:
            return False
        self.blob = blob
        return True


async def test_the_first_load_creates_one_active_key_and_later_loads_read_it() -> None:
    store = MemoryStore()
    ring = await load_ring(store, SECRET, now=T0)
    assert ring.current(T0) == ring.keys[0]
    assert await load_ring(store, SECRET, now=T0 + DAY) == ring


async def test_two_processes_creating_the_first_ring_agree_on_one() -> None:
    store = MemoryStore()
    theirs = KeyRing.create(T0)
    store.before_save = serialise(theirs, SECRET)
    assert await load_ring(store, SECRET, now=T0) == theirs


async def test_a_stored_rotation_keeps_the_old_key_and_refuses_to_overwrite_a_concurrent_one() -> None:
    store = MemoryStore()
    first = await rotate_stored(store, SECRET, now=T0)
    assert first.current(T0) == first.keys[0]  # nothing stored yet: the first key signs at once
    second = await rotate_stored(store, SECRET, now=T0 + DAY, prepublish=DAY)
    assert [key.kid for key in second.keys][0] == first.keys[0].kid and len(second.keys) == 2
    assert deserialise(store.blob or b"", SECRET) == second
    theirs = second.rotate(T0 + 2 * DAY)
    store.before_save = serialise(theirs, SECRET)
    with pytest.raises(Conflict):
        await rotate_stored(store, SECRET, now=T0 + 2 * DAY)
    assert deserialise(store.blob or b"", SECRET) == theirs
