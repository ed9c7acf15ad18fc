"""Access tokens: what is accepted is exactly what we signed, for this service, now, in this municipality.

Everything else -- noise, truncations, flipped bytes, forged algorithms, foreign keys, tampered claims, bad
times, wrong issuer or audience, oversize tokens -- raises a :class:`TokenRejected`, never another exception.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import string
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from hypothesis import given, settings
from hypothesis import strategies as st

from core.exceptions import Forbidden, ImproperlyConfigured, InvalidInput
from core.identity.keys import MAX_CLOCK_SKEW, MAX_TOKEN_LIFETIME, KeyRing, generate_key
from core.identity.tokens import (
    MAX_TOKEN_BYTES,
    AccessClaims,
    InvalidToken,
    TokenExpired,
    TokenForOtherMunicipality,
    TokenRejected,
    issue_access_token,
    validate_access_token,
)

NOW = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)
EPOCH = int(NOW.timestamp())
ISSUER = "https://id.tsunagu.example"
AUDIENCE = "https://api.tsunagu.example"
MID = 7
RING = KeyRing.create(NOW - timedelta(days=1))
KEY = RING.keys[0]
KID = KEY.kid
OUR_PRIVATE = KEY.private_key.private_key
assert OUR_PRIVATE is not None
FOREIGN = ec.generate_private_key(ec.SECP256R1())
B64URL = string.ascii_letters + string.digits + "-_"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def es256(private: ec.EllipticCurvePrivateKey) -> Callable[[bytes], bytes]:
    def sign(signing_input: bytes) -> bytes:
        r, s = decode_dss_signature(private.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    return sign


def hs256(secret: bytes) -> Callable[[bytes], bytes]:
    return lambda signing_input: hmac.new(secret, signing_input, hashlib.sha256).digest()


def compact(header: dict[str, Any], payload: dict[str, Any] | bytes, sign: Callable[[bytes], bytes]) -> str:
    """A token built by hand, so that it can be wrong in every way joserfc would refuse to produce."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(body)}"
    return f"{signing_input}.{b64(sign(signing_input.encode()))}"


def claims(**overrides: Any) -> dict[str, Any]:
    base = {
        "sub": "account-1",
        "mid": MID,
        "scopes": ["notices:read"],
        "iat": EPOCH,
        "nbf": EPOCH,
        "exp": EPOCH + 600,
        "jti": "jti-1",
        "typ": "account",
        "iss": ISSUER,
        "aud": AUDIENCE,
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not ...}


OUR_HEADER = {"alg": "ES256", "kid": KID, "typ": "at+jwt"}


def ours(payload: dict[str, Any] | bytes, **header: Any) -> str:
    """Signed with the ring's real key: only the content can be what is wrong."""
    return compact({**OUR_HEADER, **header}, payload, es256(OUR_PRIVATE))


def issue(**overrides: Any) -> str:
    args: dict[str, Any] = {
        "subject": "account-1",
        "municipality_id": MID,
        "scopes": ["notices:read", "notices:write"],
        "audience": AUDIENCE,
        "issuer": ISSUER,
        "now": NOW,
    }
    args.update(overrides)
    return issue_access_token(RING, **args)


def validate(token: Any, keys: Any = RING, **overrides: Any) -> AccessClaims:
    args: dict[str, Any] = {"issuer": ISSUER, "audience": AUDIENCE, "municipality_id": MID, "now": NOW}
    args.update(overrides)
    return validate_access_token(token, keys, **args)


def rejected(token: Any, **overrides: Any) -> TokenRejected:
    """The validator refuses ``token`` with one of the token errors; anything else (or success) fails the test."""
    with pytest.raises(TokenRejected) as caught:
        validate(token, **overrides)
    assert isinstance(caught.value, InvalidToken | TokenForOtherMunicipality)
    assert caught.value.status_code in (401, 403)
    return caught.value


GOOD = issue()


# --- What is accepted --------------------------------------------------------------------------------------


def test_an_issued_token_validates_to_the_claims_it_was_issued_with() -> None:
    token = issue(token_type="api_key", subject="key-9", jti="fixed", lifetime=timedelta(minutes=5))
    got = validate(token)
    assert got == AccessClaims(
        sub="key-9",
        mid=MID,
        scopes=("notices:read", "notices:write"),
        iat=EPOCH,
        nbf=EPOCH,
        exp=EPOCH + 300,
        jti="fixed",
        typ="api_key",
    )
    assert got.expires_at == NOW + timedelta(minutes=5)
    assert validate(token, RING.jwks(NOW)) == got  # the same through the published JWKS
    header = json.loads(unb64(token.split(".")[0]))
    assert header == {"alg": "ES256", "kid": KID, "typ": "at+jwt"}


def test_every_token_gets_its_own_id_by_default() -> None:
    assert validate(issue()).jti != validate(issue()).jti


def test_an_audience_list_containing_ours_is_accepted() -> None:
    assert validate(issue(audience=["https://other.example", AUDIENCE])).sub == "account-1"
    rejected(issue(audience=["https://other.example"]))


def test_clock_skew_is_tolerated_up_to_the_leeway_only() -> None:
    token = issue(lifetime=timedelta(minutes=10))
    assert validate(token, now=NOW + timedelta(minutes=10, seconds=29)).sub == "account-1"
    assert isinstance(rejected(token, now=NOW + timedelta(minutes=10, seconds=30)), TokenExpired)
    assert validate(token, now=NOW - timedelta(seconds=30)).sub == "account-1"  # issuer's clock ahead
    assert "future" in rejected(token, now=NOW - timedelta(seconds=31)).detail
    assert validate(token, now=NOW + timedelta(minutes=10), leeway=timedelta(seconds=60)).sub == "account-1"
    with pytest.raises(ImproperlyConfigured, match="leeway"):
        validate(token, leeway=MAX_CLOCK_SKEW + timedelta(seconds=1))
    with pytest.raises(ImproperlyConfigured, match="leeway"):
        validate(token, leeway=timedelta(seconds=-1))


@settings(max_examples=200, deadline=None)
@given(
    iat=st.integers(min_value=-7200, max_value=7200),
    nbf=st.integers(min_value=-7200, max_value=7200),
    exp=st.integers(min_value=-7200, max_value=7200),
    leeway=st.integers(min_value=0, max_value=60),
)
def test_genuinely_signed_times_are_accepted_exactly_when_the_rules_allow(
    iat: int, nbf: int, exp: int, leeway: int
) -> None:
    """Times relative to now, in seconds. The rules: iat <= nbf < exp, at most 1 h from iat to exp, nothing
    issued or starting later than now + leeway, and not expired by now - leeway."""
    token = ours(claims(iat=EPOCH + iat, nbf=EPOCH + nbf, exp=EPOCH + exp))
    allowed = (
        iat <= nbf < exp
        and exp - iat <= MAX_TOKEN_LIFETIME.total_seconds()
        and iat <= leeway
        and nbf <= leeway
        and exp > -leeway
    )
    if allowed:
        assert validate(token, leeway=timedelta(seconds=leeway)).exp == EPOCH + exp
    else:
        assert isinstance(rejected(token, leeway=timedelta(seconds=leeway)), InvalidToken)


# --- Municipality binding: 403, and only for an otherwise valid token ---------------------------------------


def test_a_token_for_another_municipality_is_refused_with_403() -> None:
    error = rejected(GOOD, municipality_id=MID + 1)
    assert isinstance(error, TokenForOtherMunicipality) and isinstance(error, Forbidden)
    assert error.status_code == 403
    assert isinstance(rejected(issue(municipality_id=MID + 1)), TokenForOtherMunicipality)


def test_a_bad_token_for_another_municipality_is_still_401() -> None:
    expired = issue(now=NOW - timedelta(hours=1))
    assert isinstance(rejected(expired, municipality_id=MID + 1), TokenExpired)
    assert rejected(ours(claims(iss="https://evil.example", mid=MID + 1))).status_code == 401


def test_401_errors_carry_the_bearer_challenge() -> None:
    error = rejected(GOOD, audience="https://elsewhere.example")
    assert error.status_code == 401
    assert getattr(error, "headers", {}) == {"WWW-Authenticate": 'Bearer error="invalid_token"'}


# --- Noise and malformed input ------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(st.text(max_size=300), st.binary(max_size=300), st.text(alphabet=B64URL + ".", max_size=300))
)
def test_random_strings_and_bytes_are_rejected(token: str | bytes) -> None:
    rejected(token)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet=B64URL, max_size=120), max_size=7).map(".".join))
def test_any_number_of_random_segments_is_rejected(token: str) -> None:
    rejected(token)


@settings(max_examples=200, deadline=None)
@given(
    segments=st.integers(min_value=0, max_value=6),
    extra=st.text(alphabet=B64URL + ".", max_size=20),
)
def test_truncated_and_extended_real_tokens_are_rejected(segments: int, extra: str) -> None:
    parts = GOOD.split(".")
    token = ".".join((parts * 3)[:segments]) if segments != 3 else GOOD + extra
    if token == GOOD:
        return
    rejected(token)


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_a_real_token_with_any_one_character_changed_is_rejected(data: st.DataObject) -> None:
    position = data.draw(st.integers(min_value=0, max_value=len(GOOD) - 1), label="position")
    replacement = data.draw(
        st.one_of(st.sampled_from(B64URL + ".=+/ "), st.characters()).filter(lambda c: c != GOOD[position]),
        label="replacement",
    )
    rejected(GOOD[:position] + replacement + GOOD[position + 1 :])


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_a_real_token_with_any_one_byte_flipped_is_rejected(data: st.DataObject) -> None:
    raw = bytearray(GOOD.encode())
    position = data.draw(st.integers(min_value=0, max_value=len(raw) - 1), label="position")
    raw[position] ^= data.draw(st.integers(min_value=1, max_value=255), label="xor")
    rejected(bytes(raw))


def test_oversize_tokens_are_rejected_before_parsing() -> None:
    padding = "A" * MAX_TOKEN_BYTES
    for token in (GOOD + padding, padding + GOOD, "." * (MAX_TOKEN_BYTES + 1), (GOOD + padding).encode()):
        assert "longer than" in rejected(token).detail
    # Genuinely signed by our key, every claim right, but oversize: still refused.
    huge = ours(claims(scopes=[f"scope{i}" for i in range(1000)]))
    assert len(huge) > MAX_TOKEN_BYTES
    assert "longer than" in rejected(huge).detail
    with pytest.raises(InvalidInput, match="fewer scopes"):
        issue(scopes=[f"scope{i}" for i in range(1000)])


def test_non_text_is_rejected() -> None:
    for token in (None, 42, ["a.b.c"]):
        rejected(token)


# --- Forgeries ------------------------------------------------------------------------------------------------

PUBLIC_PEM = OUR_PRIVATE.public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
)
PUBLIC_JWK = json.dumps(KEY.public_jwk()).encode()
PUBLIC_POINT = OUR_PRIVATE.public_key().public_bytes(
    serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
)
OTHER_ALGORITHMS = ["none", "None", "NONE", "HS256", "HS384", "HS512", "RS256", "PS256", "ES384", "ES512"]
OTHER_ALGORITHMS += ["ES256K", "EdDSA", "Ed25519", "es256", "ES256 ", ""]

claim_overrides = st.fixed_dictionaries(
    {},
    optional={
        "mid": st.integers(min_value=-5, max_value=50),
        "scopes": st.lists(st.sampled_from(["notices:read", "notices:write", "admin", "*"]), max_size=4),
        "exp": st.integers(min_value=EPOCH + 1, max_value=EPOCH + 3600),
        "sub": st.text(max_size=10),
        "typ": st.sampled_from(["account", "api_key"]),
    },
)


@settings(max_examples=200, deadline=None)
@given(
    alg=st.sampled_from(OTHER_ALGORITHMS),
    signature=st.one_of(
        st.just(b""),
        st.binary(min_size=1, max_size=600),
        *(st.just(hs256(secret)) for secret in (PUBLIC_PEM, PUBLIC_JWK, PUBLIC_POINT, b"")),
    ),
    overrides=claim_overrides,
)
def test_tokens_with_any_other_algorithm_are_rejected(
    alg: str, signature: bytes | Callable[[bytes], bytes], overrides: dict[str, Any]
) -> None:
    """``none`` (with or without a signature), HS256 keyed with our public key in every usual encoding (the
    classic HS/RS confusion), RSA, other curves, case tricks: rejected whatever the claims say."""
    sign = signature if callable(signature) else (lambda _input, sig=signature: sig)
    rejected(compact({**OUR_HEADER, "alg": alg}, claims(**overrides), sign))


@settings(max_examples=200, deadline=None)
@given(
    overrides=claim_overrides,
    kid=st.sampled_from([KID, KID + "x", "", "0"]),
    signature=st.one_of(st.just(es256(FOREIGN)), st.binary(min_size=64, max_size=64)),
)
def test_a_foreign_key_or_a_random_signature_under_our_kid_is_rejected(
    overrides: dict[str, Any], kid: str, signature: bytes | Callable[[bytes], bytes]
) -> None:
    sign = signature if callable(signature) else (lambda _input, sig=signature: sig)
    error = rejected(compact({**OUR_HEADER, "kid": kid}, claims(**overrides), sign))
    assert ("signature" if kid == KID else "unknown key") in error.detail


FOREIGN_JWK = {"kty": "EC", "crv": "P-256", **{k: b64(v) for k, v in (("x", b"x" * 32), ("y", b"y" * 32))}}
HEADER_ADDITIONS = [
    {"jwk": FOREIGN_JWK},
    {"jku": "https://evil.example/jwks.json"},
    {"x5u": "https://evil.example/cert.pem"},
    {"x5c": ["MIIB"]},
    {"x5t": "abc"},
    {"crit": ["exp"], "exp": EPOCH + 60},
    {"crit": ["b64"], "b64": False},
    {"cty": "JWT"},
    {"zip": "DEF"},
    {"enc": "A128GCM"},
    {"unknown": 1},
]


@pytest.mark.parametrize("addition", HEADER_ADDITIONS, ids=lambda a: "+".join(a))
def test_header_parameters_we_do_not_understand_are_rejected_even_under_our_own_signature(
    addition: dict[str, Any],
) -> None:
    rejected(ours(claims(), **addition))
    # The embedded-key attack proper: the attacker's key in the header, the token signed with it.
    if "jwk" in addition:
        jwk = generate_key(NOW).public_jwk()
        attacker = compact({**OUR_HEADER, "jwk": jwk}, claims(), es256(FOREIGN))
        rejected(attacker)


@pytest.mark.parametrize(
    "header",
    [
        {"alg": "ES256", "kid": KID},  # no typ
        {"alg": "ES256", "kid": KID, "typ": "JWT"},  # an ID token or other JWT from the same keys
        {"alg": "ES256", "typ": "at+jwt"},  # no kid
        {"alg": "ES256", "kid": 1, "typ": "at+jwt"},
        {"alg": "ES256", "kid": [KID], "typ": "at+jwt"},
        {"kid": KID, "typ": "at+jwt"},  # no alg
        {"alg": ["ES256"], "kid": KID, "typ": "at+jwt"},
    ],
)
def test_headers_that_are_not_exactly_ours_are_rejected(header: dict[str, Any]) -> None:
    rejected(compact(header, claims(), es256(OUR_PRIVATE)))


def test_a_header_that_is_not_a_json_object_is_rejected() -> None:
    for raw in (b"[]", b'"ES256"', b"null", b"{", b"\xff\xfe"):
        signing_input = f"{b64(raw)}.{b64(json.dumps(claims()).encode())}"
        rejected(f"{signing_input}.{b64(es256(OUR_PRIVATE)(signing_input.encode()))}")


@settings(max_examples=200, deadline=None)
@given(overrides=claim_overrides)
def test_claims_tampered_without_re_signing_are_rejected(overrides: dict[str, Any]) -> None:
    header, payload, signature = GOOD.split(".")
    original = json.loads(unb64(payload))
    tampered = {**original, **overrides}
    if tampered == original:
        return
    forged = f"{header}.{b64(json.dumps(tampered).encode())}.{signature}"
    assert isinstance(rejected(forged), InvalidToken)  # the signature fails before mid is looked at


# --- Claims under our own signature ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "why"),
    [
        ({"iss": "https://evil.example"}, "issuer"),
        ({"iss": ISSUER + "/"}, "issuer"),
        ({"aud": "https://other.example"}, "meant for"),
        ({"aud": []}, "meant for"),
        ({"aud": [AUDIENCE.upper()]}, "meant for"),
        ({"exp": EPOCH + 3601}, "longer than"),
        ({"iat": EPOCH - 4000, "nbf": EPOCH - 4000, "exp": EPOCH + 600}, "longer than"),
        ({"exp": EPOCH}, "inconsistent"),
        ({"nbf": EPOCH - 10}, "inconsistent"),
        ({"exp": EPOCH - 31, "iat": EPOCH - 600, "nbf": EPOCH - 600}, "expired"),
        ({"nbf": EPOCH + 31}, "not valid yet"),
        ({"iat": EPOCH + 31, "nbf": EPOCH + 31}, "future"),
        ({"mid": str(MID)}, "malformed"),
        ({"mid": True}, "malformed"),
        ({"mid": float(MID)}, "malformed"),
        ({"iat": float(EPOCH)}, "malformed"),
        ({"exp": str(EPOCH + 600)}, "malformed"),
        ({"scopes": "notices:read"}, "malformed"),
        ({"typ": "refresh"}, "malformed"),
        ({"sub": ...}, "malformed"),
        ({"jti": ...}, "malformed"),
        ({"exp": ...}, "malformed"),
        ({"mid": ...}, "malformed"),
        ({"aud": ...}, "malformed"),
        ({"iss": ...}, "malformed"),
    ],
    ids=lambda value: json.dumps(value, default=str) if isinstance(value, dict) else value,
)
def test_signed_tokens_with_bad_claims_are_rejected(overrides: dict[str, Any], why: str) -> None:
    error = rejected(ours(claims(**overrides)))
    assert isinstance(error, InvalidToken) and why in error.detail


def test_a_signed_payload_that_is_not_a_json_object_is_rejected() -> None:
    for payload in (b"[]", b"null", b"not json", b'{"mid": 7', b"\xff"):
        assert "malformed" in rejected(ours(payload)).detail


# --- Rotation -------------------------------------------------------------------------------------------------


def test_tokens_survive_a_rotation_and_die_with_their_key() -> None:
    t0 = NOW
    ring = KeyRing.create(t0 - timedelta(days=30))
    old_kid = ring.keys[0].kid
    rotated_at, prepublish = t0, timedelta(days=1)
    ring = ring.rotate(rotated_at, prepublish=prepublish)
    new_kid = ring.keys[-1].kid

    def kid_of(token: str) -> str:
        return str(json.loads(unb64(token.split(".")[0]))["kid"])

    def check(token: str, at: datetime, keys: KeyRing | dict[str, Any] = ring) -> AccessClaims:
        return validate(token, keys, now=at)

    # Pre-publication: the new key is in the JWKS a relying party caches now, but does not sign yet.
    cached_jwks = ring.jwks(rotated_at)
    assert [k["kid"] for k in cached_jwks["keys"]] == [old_kid, new_kid]
    assert kid_of(issue_access_token(ring, **issue_args(rotated_at + timedelta(hours=23)))) == old_kid

    # Activation: the new key signs, and a relying party with the JWKS cached a day ago already knows it.
    activation = rotated_at + prepublish
    by_new = issue_access_token(ring, **issue_args(activation))
    assert kid_of(by_new) == new_kid
    assert check(by_new, activation, cached_jwks).sub == "account-1"

    # Overlap: the last token the old key signed validates for its whole lifetime.
    last_by_old = issue_access_token(
        ring, **issue_args(activation - timedelta(seconds=1), lifetime=MAX_TOKEN_LIFETIME)
    )
    assert kid_of(last_by_old) == old_kid
    end = activation - timedelta(seconds=1) + MAX_TOKEN_LIFETIME
    assert check(last_by_old, end - timedelta(seconds=1)).sub == "account-1"
    assert check(last_by_old, end - timedelta(seconds=1), ring.jwks(end)).sub == "account-1"

    # Retirement + lifetime (+ the largest leeway): the old key drops out of the JWKS, and what it signed fails
    # because the key is unknown, not merely because it expired.
    gone = activation + MAX_TOKEN_LIFETIME + MAX_CLOCK_SKEW
    assert [k["kid"] for k in ring.jwks(gone)["keys"]] == [new_kid]
    for keys in (ring, ring.jwks(gone)):
        error = rejected(last_by_old, keys=keys, now=gone)
        assert type(error) is InvalidToken and "unknown key" in error.detail
    assert check(by_new, activation + timedelta(minutes=5)).sub == "account-1"


def issue_args(now: datetime, **overrides: Any) -> dict[str, Any]:
    return {
        "subject": "account-1",
        "municipality_id": MID,
        "scopes": ["notices:read"],
        "audience": AUDIENCE,
        "issuer": ISSUER,
        "now": now,
        **overrides,
    }


def test_a_token_from_a_key_not_in_the_ring_is_rejected() -> None:
    other_ring = KeyRing.create(NOW - timedelta(days=1))
    token = issue_access_token(other_ring, **issue_args(NOW))
    assert "unknown key" in rejected(token).detail
    assert "unknown key" in rejected(token, keys=RING.jwks(NOW)).detail


# --- Issuing ---------------------------------------------------------------------------------------------------


def test_issuing_refuses_what_validation_would_refuse() -> None:
    with pytest.raises(ImproperlyConfigured, match="lifetime"):
        issue(lifetime=MAX_TOKEN_LIFETIME + timedelta(seconds=1))
    with pytest.raises(ImproperlyConfigured, match="lifetime"):
        issue(lifetime=timedelta(0))
    short = KeyRing(keys=(generate_key(NOW, token_lifetime=timedelta(minutes=5)),))
    with pytest.raises(ImproperlyConfigured, match="lifetime"):
        issue_access_token(short, **issue_args(NOW, lifetime=timedelta(minutes=6)))
    for bad in (["has space"], ['quote"'], [""], ["back\\slash"]):
        with pytest.raises(InvalidInput, match="scope"):
            issue(scopes=bad)
    for args in (
        {"subject": ""},
        {"issuer": ""},
        {"audience": []},
        {"audience": ""},
        {"municipality_id": True},
    ):
        with pytest.raises(InvalidInput):
            issue(**args)
    with pytest.raises(ValueError, match="aware"):
        issue(now=datetime(2026, 4, 1, 9, 0))
