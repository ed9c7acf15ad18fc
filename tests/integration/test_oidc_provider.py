"""The OIDC test provider on its own (tests/oidc.py, tests/oidc_provider/): discovery, the code flow with PKCE
done by hand, the ID token checked with ``cryptography``, and each adversarial mode's defect.

These prove the fixture the relying-party tests stand on; they use no tsunagu code.
"""

# ruff: noqa: F811 - the oidc_provider fixture is imported, then named as a test parameter

from __future__ import annotations

import base64
import json
import secrets
import time
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from tests.oidc import (
    DEFAULT_REDIRECT_URIS,
    MODES,
    OIDCClient,
    OIDCProvider,
    callback_params,
    oidc_provider,  # noqa: F401 - the pytest fixture
    pkce_pair,
)

pytestmark = pytest.mark.slow

REDIRECT_URI = DEFAULT_REDIRECT_URIS[0]


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def decode_unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    header, payload, _ = token.split(".")
    return json.loads(_b64decode(header)), json.loads(_b64decode(payload))


def signature_valid(token: str, jwks: dict[str, Any]) -> bool:
    """RS256 check against the provider's JWKS, with ``cryptography`` directly (no JOSE library needed)."""
    pytest.importorskip("cryptography")
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    header, _ = decode_unverified(token)
    assert header["alg"] == "RS256"
    (jwk,) = [k for k in jwks["keys"] if k["kid"] == header["kid"]]
    assert "d" not in jwk, "the JWKS must not publish the private key"
    public_key = rsa.RSAPublicNumbers(
        int.from_bytes(_b64decode(jwk["e"]), "big"), int.from_bytes(_b64decode(jwk["n"]), "big")
    ).public_key()
    signing_input, _, signature = token.rpartition(".")
    try:
        public_key.verify(_b64decode(signature), signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


def authorize_url(
    provider: OIDCProvider, client: OIDCClient, redirect_uri: str, **overrides: str
) -> tuple[str, dict[str, str]]:
    verifier, challenge = pkce_pair()
    params = {
        "response_type": "code",
        "client_id": client.client_id,
        "redirect_uri": redirect_uri,
        "scope": "openid email profile",
        "state": secrets.token_urlsafe(16),
        "nonce": secrets.token_urlsafe(16),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **overrides,
    }
    params = {k: v for k, v in params.items() if v}
    return f"{provider.metadata['authorization_endpoint']}?{urlencode(params)}", params | {
        "verifier": verifier
    }


def exchange(
    provider: OIDCProvider, client: OIDCClient, code: str, redirect_uri: str, verifier: str
) -> httpx.Response:
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": verifier,
    }
    auth: tuple[str, str] | None = (client.client_id, client.client_secret)
    if client.token_endpoint_auth_method == "client_secret_post":
        data |= {"client_id": client.client_id, "client_secret": client.client_secret}
        auth = None
    return httpx.post(provider.metadata["token_endpoint"], data=data, auth=auth, timeout=5)


def code_flow(
    provider: OIDCProvider,
    account: str = "alice",
    client: OIDCClient | None = None,
    redirect_uri: str = REDIRECT_URI,
    mode: str | None = None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """Authorize, log in, exchange the code; returns the token response and the request's parameters."""
    client = client or provider.client
    url, sent = authorize_url(provider, client, redirect_uri)
    callback = provider.login(url, account, mode=mode)
    assert callback.startswith(redirect_uri + "?"), callback
    params = callback_params(callback)
    assert params["state"] == sent["state"]
    assert params["iss"] == provider.issuer  # RFC 9207 authorization response issuer
    response = exchange(provider, client, params["code"], redirect_uri, sent["verifier"])
    assert response.status_code == 200, response.text
    return response.json(), sent


def test_discovery_and_jwks(oidc_provider: OIDCProvider) -> None:
    meta = oidc_provider.metadata
    assert meta["issuer"] == oidc_provider.issuer
    assert oidc_provider.issuer.startswith("http://127.0.0.1:")
    for endpoint in ("authorization_endpoint", "token_endpoint", "jwks_uri", "userinfo_endpoint"):
        assert meta[endpoint].startswith(oidc_provider.issuer + "/")
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["response_types_supported"] == ["code"]
    assert "RS256" in meta["id_token_signing_alg_values_supported"]
    assert {"client_secret_basic", "client_secret_post"} <= set(meta["token_endpoint_auth_methods_supported"])
    keys = oidc_provider.jwks()["keys"]
    assert keys and all("d" not in k for k in keys)
    assert set(oidc_provider.accounts) >= {"alice", "bob", "carol"}
    assert oidc_provider.get_mode() == "normal"


def test_code_flow_with_pkce_yields_a_valid_id_token(oidc_provider: OIDCProvider) -> None:
    tokens, sent = code_flow(oidc_provider, "alice")
    assert tokens["token_type"].lower() == "bearer"
    header, claims = decode_unverified(tokens["id_token"])
    assert signature_valid(tokens["id_token"], oidc_provider.jwks())
    assert claims["iss"] == oidc_provider.issuer
    assert claims["aud"] == oidc_provider.client_id
    assert claims["nonce"] == sent["nonce"]
    assert claims["sub"] == "alice"
    now = time.time()
    assert claims["iat"] <= now + 5 < claims["exp"]
    assert claims["email"] == "alice@example.jp" and claims["email_verified"] is True
    assert claims["name"] == "三木 花子"

    userinfo = httpx.get(
        oidc_provider.metadata["userinfo_endpoint"],
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
        timeout=5,
    )
    assert userinfo.status_code == 200, userinfo.text
    assert userinfo.json() == oidc_provider.accounts["alice"]


def test_codes_are_single_use_and_bound_to_the_verifier(oidc_provider: OIDCProvider) -> None:
    client = oidc_provider.client
    url, sent = authorize_url(oidc_provider, client, REDIRECT_URI)
    code = callback_params(oidc_provider.login(url, "bob"))["code"]
    wrong = exchange(oidc_provider, client, code, REDIRECT_URI, pkce_pair()[0])
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    # A failed PKCE check does not consume the code here; a successful exchange does.
    assert exchange(oidc_provider, client, code, REDIRECT_URI, sent["verifier"]).status_code == 200
    again = exchange(oidc_provider, client, code, REDIRECT_URI, sent["verifier"])
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_pkce_is_required(oidc_provider: OIDCProvider) -> None:
    url, _ = authorize_url(
        oidc_provider, oidc_provider.client, REDIRECT_URI, code_challenge="", code_challenge_method=""
    )
    params = callback_params(oidc_provider.login(url, "alice"))
    assert params["error"] == "invalid_request"
    assert "PKCE" in params["error_description"]


def test_unregistered_redirect_uri_is_refused_at_the_provider(oidc_provider: OIDCProvider) -> None:
    url, _ = authorize_url(oidc_provider, oidc_provider.client, "http://testserver/elsewhere")
    with pytest.raises(AssertionError, match="redirect_uri"):
        oidc_provider.login(url, "alice")


def test_registered_loopback_client_with_client_secret_post(oidc_provider: OIDCProvider) -> None:
    redirect_uri = "http://127.0.0.1:8123/m/miki/auth/oidc/callback"
    client = oidc_provider.register_client([redirect_uri], token_endpoint_auth_method="client_secret_post")
    assert client.client_secret
    tokens, _ = code_flow(oidc_provider, "carol", client=client, redirect_uri=redirect_uri)
    _, claims = decode_unverified(tokens["id_token"])
    assert claims["aud"] == client.client_id
    assert claims["sub"] == "carol" and "email" not in claims
    # Quirk of oidc-provider: basic and post are interchangeable for either registered method; a wrong
    # secret is refused whichever way it comes.
    url, sent = authorize_url(oidc_provider, client, redirect_uri)
    code = callback_params(oidc_provider.login(url, "carol"))["code"]
    wrong = OIDCClient(client.client_id, "not-the-secret", client.redirect_uris, "client_secret_post")
    refused = exchange(oidc_provider, wrong, code, redirect_uri, sent["verifier"])
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"
    basic = OIDCClient(client.client_id, client.client_secret, client.redirect_uris, "client_secret_basic")
    assert exchange(oidc_provider, basic, code, redirect_uri, sent["verifier"]).status_code == 200


def test_bad_client_metadata_is_reported(oidc_provider: OIDCProvider) -> None:
    with pytest.raises(ValueError, match="fragment"):
        oidc_provider.register_client(["http://127.0.0.1:8123/cb#frag"])


def test_denied_login_and_unknown_account(oidc_provider: OIDCProvider) -> None:
    url, sent = authorize_url(oidc_provider, oidc_provider.client, REDIRECT_URI)
    params = callback_params(oidc_provider.deny(url))
    assert params["error"] == "access_denied" and params["state"] == sent["state"]
    url, _ = authorize_url(oidc_provider, oidc_provider.client, REDIRECT_URI)
    with pytest.raises(AssertionError, match="test login needs"):
        oidc_provider.login(url, "mallory")


def test_login_hint_and_sso_session(oidc_provider: OIDCProvider) -> None:
    with httpx.Client(timeout=5) as browser:
        url, _ = authorize_url(oidc_provider, oidc_provider.client, REDIRECT_URI, login_hint="bob")
        first = oidc_provider.login(url, None, browser=browser)  # login_hint names the account
        assert "code" in callback_params(first)
        # Same cookies: the provider session and grant are reused, prompt=none succeeds.
        url, sent = authorize_url(oidc_provider, oidc_provider.client, REDIRECT_URI, prompt="none")
        params = callback_params(oidc_provider.login(url, "alice", browser=browser))
        tokens = exchange(oidc_provider, oidc_provider.client, params["code"], REDIRECT_URI, sent["verifier"])
        assert decode_unverified(tokens.json()["id_token"])[1]["sub"] == "bob"
    # A fresh browser has no session: prompt=none fails with login_required.
    url, _ = authorize_url(oidc_provider, oidc_provider.client, REDIRECT_URI, prompt="none")
    assert callback_params(oidc_provider.login(url, "alice"))["error"] == "login_required"


def assert_defect(
    mode: str, claims: dict[str, Any], sent: dict[str, str], valid: bool, provider: OIDCProvider
) -> None:
    """Exactly the defect ``mode`` names, everything else intact."""
    now = time.time()
    assert valid is (mode != "bad_signature"), mode
    assert (claims["nonce"] == sent["nonce"]) is (mode != "wrong_nonce"), mode
    assert (claims["exp"] > now) is (mode != "expired"), mode
    assert (claims["aud"] == provider.client_id) is (mode != "wrong_aud"), mode
    assert (claims["iss"] == provider.issuer) is (mode != "wrong_iss"), mode
    assert claims["sub"] == "alice"


@pytest.mark.parametrize("mode", [m for m in MODES if m != "normal"])
def test_adversarial_mode_via_set_mode(oidc_provider: OIDCProvider, mode: str) -> None:
    jwks = oidc_provider.jwks()
    with oidc_provider.mode(mode):
        assert oidc_provider.get_mode() == mode
        tokens, sent = code_flow(oidc_provider, "alice")
    _, claims = decode_unverified(tokens["id_token"])
    assert_defect(mode, claims, sent, signature_valid(tokens["id_token"], jwks), oidc_provider)
    assert oidc_provider.get_mode() == "normal"
    tokens, sent = code_flow(oidc_provider, "alice")
    _, claims = decode_unverified(tokens["id_token"])
    assert_defect("normal", claims, sent, signature_valid(tokens["id_token"], jwks), oidc_provider)


def test_adversarial_mode_per_login(oidc_provider: OIDCProvider) -> None:
    jwks = oidc_provider.jwks()
    tokens, sent = code_flow(oidc_provider, "alice", mode="expired")
    assert_defect(
        "expired",
        decode_unverified(tokens["id_token"])[1],
        sent,
        signature_valid(tokens["id_token"], jwks),
        oidc_provider,
    )
    assert oidc_provider.get_mode() == "normal"
    with pytest.raises(ValueError):
        oidc_provider.set_mode("nonsense")
