"""ID token validation (``core.identity.oidc.validate_id_token``) with tokens crafted here, and ``safe_next``.

Every rule of OpenID Connect Core 3.1.3.7 the relying party relies on has a token that breaks only that rule;
the classic JWT attacks (``alg: none``, HS256 keyed with the public key, a key the provider does not publish)
are among them. Also: the JWK Set refetch on an unknown ``kid`` and the discovery cache, with a stubbed fetch.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx2
import pytest
from cryptography.hazmat.primitives import serialization
from hypothesis import given
from hypothesis import strategies as st
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from core.identity.config import OidcProviderConfig
from core.identity.models import OidcLoginState
from core.identity.oidc import (
    IdTokenRejected,
    LoginStateRejected,
    OidcRelyingParty,
    ProviderMetadata,
    ProviderUnavailable,
    UnknownSigningKey,
    safe_next,
    validate_id_token,
)

ISSUER = "https://id.example.jp"
CLIENT_ID = "tsunagu-miki"
NONCE = "n-0S6_WzA2Mj"
NOW = 1_800_000_000
RSA = RSAKey.generate_key(2048, parameters={"kid": "rsa-1"}, private=True)
EC = ECKey.generate_key("P-256", parameters={"kid": "ec-1"}, private=True)
OTHER_RSA = RSAKey.generate_key(2048, parameters={"kid": "rsa-1"}, private=True)
"""Same ``kid`` as ``RSA``, another key: what a forger without the provider's key has."""


def public_jwks(*keys: RSAKey | ECKey) -> dict[str, Any]:
    return {"keys": [k.as_dict(private=False) for k in keys]}


JWKS = public_jwks(RSA, EC)


def claims(**changes: Any) -> dict[str, Any]:
    base = {
        "iss": ISSUER,
        "sub": "alice",
        "aud": CLIENT_ID,
        "iat": NOW - 5,
        "exp": NOW + 300,
        "nonce": NONCE,
        "email": "alice@example.jp",
        "email_verified": True,
        "name": "三木 花子",
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def sign(payload: dict[str, Any], key: RSAKey | ECKey = RSA, alg: str = "RS256", **header: Any) -> str:
    head = {"alg": alg, "kid": key.kid, **header}
    return jwt.encode({k: v for k, v in head.items() if v is not None}, payload, key, algorithms=[alg])


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"") -> str:
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    return f"{signing_input}.{b64(signature)}"


def validate(token: object, **overrides: Any) -> Any:
    arguments: dict[str, Any] = {
        "jwks": JWKS,
        "issuer": ISSUER,
        "client_id": CLIENT_ID,
        "nonce": NONCE,
        "algorithms": ["RS256", "ES256"],
        "now": NOW,
    }
    arguments.update(overrides)
    return validate_id_token(token, **arguments)


def rejected(token: object, match: str, **overrides: Any) -> None:
    with pytest.raises(IdTokenRejected, match=match):
        validate(token, **overrides)


# --- good tokens ----------------------------------------------------------------------------------------------


def test_valid_rs256_token_gives_the_claims() -> None:
    got = validate(sign(claims()))
    assert (got.issuer, got.subject, got.email, got.email_verified) == (
        ISSUER,
        "alice",
        "alice@example.jp",
        True,
    )
    assert got.name == "三木 花子"
    assert got.expires_at == NOW + 300


def test_valid_es256_token_is_accepted() -> None:
    assert validate(sign(claims(), EC, "ES256")).subject == "alice"


def test_email_verified_must_be_the_json_true() -> None:
    assert validate(sign(claims(email_verified="true"))).email_verified is False
    assert validate(sign(claims(email_verified=None))).email_verified is False


def test_several_audiences_need_azp_of_this_client() -> None:
    audiences = [CLIENT_ID, "someone-else"]
    rejected(sign(claims(aud=audiences)), "lacks a required claim")
    rejected(sign(claims(aud=audiences, azp="someone-else")), "another client")
    assert validate(sign(claims(aud=audiences, azp=CLIENT_ID))).subject == "alice"
    assert validate(sign(claims(aud=[CLIENT_ID]))).subject == "alice"


def test_clock_skew_is_allowed_up_to_the_leeway() -> None:
    assert validate(sign(claims(exp=NOW - 30)), leeway=60).subject == "alice"
    assert validate(sign(claims(iat=NOW + 30)), leeway=60).subject == "alice"
    rejected(sign(claims(exp=NOW - 30)), "expired", leeway=0)
    rejected(sign(claims(exp=NOW - 61)), "expired", leeway=60)
    rejected(sign(claims(iat=NOW + 61)), "issue time", leeway=60)
    with pytest.raises(ValueError, match="leeway"):
        validate(sign(claims()), leeway=3600)


# --- each claim rule -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"iss": "https://id.example.jp/"}, "another issuer"),
        ({"iss": "https://evil.example"}, "another issuer"),
        ({"aud": "someone-else"}, "not meant for this service"),
        ({"aud": ["someone-else", "another"], "azp": CLIENT_ID}, "not meant for this service"),
        ({"nonce": "another-login"}, "nonce"),
        ({"nonce": None}, "lacks a required claim"),
        ({"sub": None}, "lacks a required claim"),
        ({"sub": 42}, "subject"),
        ({"sub": "x" * 256}, "subject"),
        ({"exp": None}, "lacks a required claim"),
        ({"iat": None}, "lacks a required claim"),
        ({"exp": NOW - 3600}, "expired"),
        ({"exp": "tomorrow"}, "expiry"),
        ({"nbf": NOW + 3600}, "not valid yet"),
        ({"at_hash": "AAAAAAAAAAAAAAAAAAAAAA"}, "access token"),
    ],
)
def test_a_token_breaking_one_rule_is_rejected(changes: dict[str, Any], reason: str) -> None:
    rejected(sign(claims(**changes)), reason, access_token="the-access-token")


def test_token_issued_before_the_login_began_is_rejected() -> None:
    rejected(sign(claims(iat=NOW - 700)), "before this login began", issued_after=NOW - 600)
    assert validate(sign(claims(iat=NOW - 590)), issued_after=NOW - 600).subject == "alice"


def test_at_hash_matching_the_access_token_is_accepted() -> None:
    digest = hashlib.sha256(b"the-access-token").digest()
    at_hash = b64(digest[:16])
    assert validate(sign(claims(at_hash=at_hash)), access_token="the-access-token").subject == "alice"


# --- signatures, algorithms and keys ----------------------------------------------------------------------------


def test_alg_none_is_rejected() -> None:
    header = {"alg": "none", "kid": RSA.kid}
    rejected(unsigned(header, claims()), "malformed")  # no signature at all
    rejected(unsigned(header, claims(), b"anything"), "must be signed with RS256 or ES256")
    rejected(unsigned({"alg": "None", "kid": RSA.kid}, claims(), b"x"), "must be signed with")


def test_hs256_keyed_with_the_public_key_is_rejected() -> None:
    """The key-confusion attack: HMAC with the provider's public key (which anyone has) as the secret."""
    public_pem = RSA.get_op_key("verify").public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = {"alg": "HS256", "kid": RSA.kid, "typ": "JWT"}
    token = unsigned(header, claims())
    signing_input = token.rstrip(".")
    forged = f"{signing_input}.{b64(hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest())}"
    rejected(forged, "must be signed with RS256 or ES256")
    jwk_bytes = json.dumps(RSA.as_dict(private=False)).encode()
    forged = f"{signing_input}.{b64(hmac.new(jwk_bytes, signing_input.encode(), hashlib.sha256).digest())}"
    rejected(forged, "must be signed with")
    # Even a provider that advertises HS256 does not get it accepted.
    rejected(forged, "no algorithm this service accepts", algorithms=["HS256"])


def test_only_advertised_algorithms_are_accepted() -> None:
    rejected(sign(claims(), EC, "ES256"), "must be signed with RS256", algorithms=["RS256"])
    rejected(sign(claims()), "must be signed with ES256", algorithms=["ES256", "HS256", "none"])


def test_tampered_signature_is_rejected() -> None:
    token = sign(claims())
    head, payload, signature = token.split(".")
    flipped = b64(
        bytes([base64.urlsafe_b64decode(signature + "==")[0] ^ 1])
        + base64.urlsafe_b64decode(signature + "==")[1:]
    )
    rejected(f"{head}.{payload}.{flipped}", "signature is not valid")
    tampered_payload = b64(json.dumps(claims(sub="mallory")).encode())
    rejected(f"{head}.{tampered_payload}.{signature}", "signature is not valid")


def test_token_signed_by_another_key_with_the_same_kid_is_rejected() -> None:
    rejected(sign(claims(), OTHER_RSA), "signature is not valid")


def test_unknown_kid_asks_for_a_fresh_key_set() -> None:
    with pytest.raises(UnknownSigningKey):
        validate(sign(claims(), RSAKey.generate_key(2048, parameters={"kid": "rotated"}, private=True)))


def test_missing_kid_is_accepted_only_with_a_single_candidate_key() -> None:
    token = sign(claims(), kid=None)
    assert "kid" not in json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    rejected(token, "no kid", jwks=public_jwks(RSA, RSAKey.generate_key(2048, private=True)))
    assert validate(token, jwks=public_jwks(RSA, EC)).subject == "alice"  # the only RSA key
    rejected(sign(claims(), OTHER_RSA, kid=None), "signature is not valid", jwks=public_jwks(RSA))


def test_keys_not_meant_for_signatures_or_private_are_never_used() -> None:
    as_enc = {**RSA.as_dict(private=False), "use": "enc"}
    with pytest.raises(UnknownSigningKey):
        validate(sign(claims()), jwks={"keys": [as_enc]})
    wrong_alg = {**RSA.as_dict(private=False), "alg": "PS256"}
    with pytest.raises(UnknownSigningKey):
        validate(sign(claims()), jwks={"keys": [wrong_alg]})
    with pytest.raises(UnknownSigningKey):
        validate(sign(claims()), jwks={"keys": [RSA.as_dict(private=True)]})
    with pytest.raises(UnknownSigningKey):
        validate(sign(claims()), jwks={"keys": "not a list"})


def test_critical_header_parameters_are_rejected() -> None:
    rejected(sign(claims(), crit=["kid"]), "critical")


@pytest.mark.parametrize(
    "token",
    [None, 42, b"a.b.c", "", "a.b", "a.b.c.d", "not a token", "e30.e30.e30", "!!!.e30.e30", "x" * 20000],
)
def test_malformed_tokens_are_rejected(token: object) -> None:
    rejected(token, "malformed|must be signed")


@given(st.text(max_size=300))
def test_any_text_is_rejected_cleanly(text: str) -> None:
    with pytest.raises(IdTokenRejected):
        validate(text)


# --- next ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "https://evil.example/",
        "//evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "http:/evil.example",
        "javascript:alert(1)",
        "evil.example",
        "/ok\r\nSet-Cookie: x=y",
        "/" + "a" * 2001,
        " /leading-space",
    ],
)
def test_next_must_stay_on_the_site(value: str) -> None:
    with pytest.raises(LoginStateRejected, match="next"):
        safe_next(value)


def test_next_defaults_to_the_front_page_and_keeps_a_query() -> None:
    assert safe_next(None) == safe_next("") == "/"
    assert safe_next("/booking/slots?day=2026-12-01#top") == "/booking/slots?day=2026-12-01#top"


@given(st.text(max_size=80))
def test_next_never_leaves_the_site(value: str) -> None:
    try:
        got = safe_next(value)
    except LoginStateRejected:
        return
    parts = urlsplit(got)
    assert got.startswith("/") and not got.startswith("//")
    assert not parts.scheme and not parts.netloc and "\\" not in got


# --- caches ---------------------------------------------------------------------------------------------------


class StubbedParty(OidcRelyingParty):
    """A relying party whose provider is a dict of documents; counts fetches."""

    def __init__(self, documents: dict[str, dict[str, Any]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.documents = documents
        self.fetched: list[str] = []

    async def _get_json(self, url: str, what: str) -> dict[str, Any]:
        self.fetched.append(url)
        if url not in self.documents:
            raise ProviderUnavailable(f"the OpenID provider did not answer ({what})")
        return self.documents[url]


CONFIG = OidcProviderConfig(issuer=ISSUER, client_id=CLIENT_ID, client_secret_env="TSUNAGU_OIDC_SECRET_TEST")
DISCOVERY_URL = f"{ISSUER}/.well-known/openid-configuration"
DISCOVERY = {
    "issuer": ISSUER,
    "authorization_endpoint": f"{ISSUER}/auth",
    "token_endpoint": f"{ISSUER}/token",
    "jwks_uri": f"{ISSUER}/jwks",
    "id_token_signing_alg_values_supported": ["RS256"],
}


async def test_discovery_is_cached_until_its_ttl() -> None:
    clock = [0.0]
    party = StubbedParty({DISCOVERY_URL: DISCOVERY}, clock=lambda: clock[0], metadata_ttl=100)
    first = await party.metadata(CONFIG)
    assert await party.metadata(CONFIG) is first
    clock[0] = 99
    await party.metadata(CONFIG)
    assert party.fetched == [DISCOVERY_URL]
    clock[0] = 101
    await party.metadata(CONFIG)
    assert party.fetched == [DISCOVERY_URL, DISCOVERY_URL]


@pytest.mark.parametrize(
    "changes",
    [
        {"issuer": "https://evil.example"},
        {"token_endpoint": "http://id.example.jp/token"},
        {"id_token_signing_alg_values_supported": ["HS256", "none"]},
        {"jwks_uri": None},
    ],
)
async def test_discovery_document_that_does_not_fit_is_refused(changes: dict[str, Any]) -> None:
    document = {k: v for k, v in (DISCOVERY | changes).items() if v is not None}
    party = StubbedParty({DISCOVERY_URL: document})
    with pytest.raises(ProviderUnavailable):
        await party.metadata(CONFIG)


async def test_jwks_is_cached_and_an_unknown_kid_refetches_it_once() -> None:
    metadata = ProviderMetadata(
        issuer=ISSUER,
        authorization_endpoint=f"{ISSUER}/auth",
        token_endpoint=f"{ISSUER}/token",
        jwks_uri=f"{ISSUER}/jwks",
    )
    rotated = RSAKey.generate_key(2048, parameters={"kid": "rsa-2"}, private=True)
    now = int(time.time())
    row = OidcLoginState(nonce=NONCE, created_at=datetime.fromtimestamp(now - 10, UTC))
    tokens = {"id_token": sign(claims(iat=now, exp=now + 300), rotated)}
    party = StubbedParty({metadata.jwks_uri: public_jwks(RSA)})
    await party.jwks(metadata)
    party.documents[metadata.jwks_uri] = public_jwks(RSA, rotated)  # the provider rotated its keys
    assert await party.jwks(metadata) == public_jwks(RSA)  # still cached
    assert (await party._verified_claims(CONFIG, metadata, tokens, row)).subject == "alice"
    assert len(party.fetched) == 2
    # A kid the provider does not publish even after the refetch: one refetch, then refused.
    stranger = RSAKey.generate_key(2048, parameters={"kid": "stranger"}, private=True)
    tokens = {"id_token": sign(claims(iat=now, exp=now + 300), stranger)}
    with pytest.raises(IdTokenRejected, match="does not publish"):
        await party._verified_claims(CONFIG, metadata, tokens, row)
    assert len(party.fetched) == 3


# --- timeouts -------------------------------------------------------------------------------------------------


@pytest.fixture
async def silent_server() -> AsyncIterator[str]:
    """A loopback server that accepts connections and never answers."""
    held: list[asyncio.StreamWriter] = []

    async def hold(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_a_provider_that_does_not_answer_times_out(
    silent_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    party = OidcRelyingParty(timeout=httpx2.Timeout(0.3))
    config = OidcProviderConfig(
        issuer=silent_server, client_id=CLIENT_ID, client_secret_env="TSUNAGU_OIDC_SECRET_T"
    )
    started = time.monotonic()
    with pytest.raises(ProviderUnavailable, match="did not answer"):
        await party.metadata(config)
    monkeypatch.setenv("TSUNAGU_OIDC_SECRET_T", "secret")
    metadata = ProviderMetadata(
        issuer=silent_server,
        authorization_endpoint=f"{silent_server}/auth",
        token_endpoint=f"{silent_server}/token",
        jwks_uri=f"{silent_server}/jwks",
    )
    with pytest.raises(ProviderUnavailable, match="token endpoint"):
        await party._exchange(config, metadata, "code", "verifier", "http://testserver/cb")
    assert time.monotonic() - started < 3
