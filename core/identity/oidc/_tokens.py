"""Validating an ID token (OpenID Connect Core 3.1.3.7): pure, no I/O; the keys and the clock are given."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Collection, Mapping
from typing import Any

import msgspec
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import (
    BadSignatureError,
    ExpiredTokenError,
    InvalidClaimError,
    JoseError,
    MissingClaimError,
)
from joserfc.jwk import ECKey, RSAKey
from joserfc.jws import JWSRegistry

from core.identity.oidc._errors import IdTokenRejected, UnknownSigningKey

DEFAULT_LEEWAY = 60
"""Clock skew (seconds) allowed on ``exp``, ``iat`` and ``nbf``."""
MAX_LEEWAY = 300
SUPPORTED_ALGORITHMS = ("RS256", "ES256")
"""The only ID token algorithms accepted, and of these only the ones the provider advertises. Never ``none`` or
an HMAC algorithm (whose key would be the client secret, or worse, a public key read as one)."""
MAX_ID_TOKEN_BYTES = 16 * 1024
_COMPACT = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
_KEY_TYPES = {"RS256": ("RSA", None), "ES256": ("EC", "P-256")}


class IdTokenClaims(msgspec.Struct, kw_only=True, frozen=True):
    """What a valid ID token says about the person. Unusable optional claims (wrong type) are left out."""

    issuer: str
    subject: str
    issued_at: int
    expires_at: int
    email: str | None = None
    email_verified: bool = False
    """True only for the JSON value ``true``; anything else (``"true"``, absent) counts as not verified."""
    name: str | None = None
    given_name: str | None = None
    family_name: str | None = None


_CLAIM_REASONS = {
    "iss": "the ID token was issued by another issuer",
    "aud": "the ID token is not meant for this service",
    "azp": "the ID token was issued to another client",
    "nonce": "the ID token does not belong to this login (nonce mismatch)",
    "iat": "the ID token's issue time is invalid or in the future",
    "nbf": "the ID token is not valid yet",
    "exp": "the ID token's expiry is invalid",
    "at_hash": "the ID token does not match the access token",
    "sub": "the ID token's subject is invalid",
}


def _b64decode(segment: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        raise IdTokenRejected("the ID token is malformed") from None


def _header(token: str) -> dict[str, Any]:
    try:
        header = msgspec.json.decode(_b64decode(token.partition(".")[0]))
    except (msgspec.DecodeError, UnicodeDecodeError):
        raise IdTokenRejected("the ID token is malformed") from None
    if not isinstance(header, dict) or not isinstance(header.get("alg"), str):
        raise IdTokenRejected("the ID token is malformed")
    if "crit" in header:
        raise IdTokenRejected("the ID token has critical header parameters this service does not understand")
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise IdTokenRejected("the ID token is malformed")
    return header


def _usable(jwk: Any, alg: str) -> bool:
    kty, crv = _KEY_TYPES[alg]
    return (
        isinstance(jwk, dict)
        and jwk.get("kty") == kty
        and (crv is None or jwk.get("crv") == crv)
        and jwk.get("use", "sig") == "sig"
        and jwk.get("alg", alg) == alg
        and "d" not in jwk  # a private key in a JWK Set is a broken provider; never use it
    )


def signing_key(jwks: Mapping[str, Any], kid: str | None, alg: str) -> RSAKey | ECKey:
    """The key of ``jwks`` to verify a token with header ``kid``/``alg``; never a key taken from the token.

    Without ``kid`` the set must hold exactly one key usable for ``alg`` (OpenID Connect Core 10.1).

    :raises UnknownSigningKey: no usable key has this ``kid`` (the set may be out of date).
    :raises IdTokenRejected: no ``kid`` and not exactly one candidate.
    """
    keys = jwks.get("keys")
    candidates = [k for k in keys if _usable(k, alg)] if isinstance(keys, list) else []
    if kid is None:
        if len(candidates) != 1:
            raise IdTokenRejected("the ID token does not say which key signed it (no kid)")
        found = candidates[0]
    else:
        matching = [k for k in candidates if k.get("kid") == kid]
        if not matching:
            raise UnknownSigningKey("the ID token is signed with a key the provider does not publish")
        found = matching[0]
    try:
        return (RSAKey if alg.startswith("RS") else ECKey).import_key(found)
    except (JoseError, ValueError, TypeError):
        raise IdTokenRejected("the provider publishes a signing key that cannot be read") from None


def _optional_text(claims: Mapping[str, Any], name: str) -> str | None:
    value = claims.get(name)
    return value if isinstance(value, str) and value.strip() else None


def validate_id_token(
    id_token: object,
    *,
    jwks: Mapping[str, Any],
    issuer: str,
    client_id: str,
    nonce: str,
    algorithms: Collection[str],
    now: float,
    leeway: int = DEFAULT_LEEWAY,
    issued_after: float | None = None,
    access_token: str | None = None,
) -> IdTokenClaims:
    """The claims of ``id_token`` if it is valid for this login (OpenID Connect Core 3.1.3.7).

    Checked, in order: the compact form and size; ``alg`` is one of ``algorithms`` that is also in
    :data:`SUPPORTED_ALGORITHMS`; the signature, with the key of ``jwks`` the header's ``kid`` names; ``iss`` is
    ``issuer`` exactly; ``aud`` contains ``client_id``, and with several audiences ``azp`` is ``client_id``;
    ``exp`` is after ``now`` and ``iat`` not after it (each with ``leeway`` seconds); ``iat`` not before
    ``issued_after`` (the start of the login); ``nonce`` equals ``nonce``; ``at_hash``, if present, matches
    ``access_token``; ``sub`` is a string of at most 255 characters.

    :raises UnknownSigningKey: the header names a key not in ``jwks`` (refetch the set and try once more).
    :raises IdTokenRejected: anything else; the message says what, without repeating the token's contents.
    """
    if not 0 <= leeway <= MAX_LEEWAY:
        raise ValueError(f"leeway must be between 0 and {MAX_LEEWAY} seconds, got {leeway}")
    accepted = [a for a in SUPPORTED_ALGORITHMS if a in algorithms]
    if not accepted:
        raise IdTokenRejected("the provider signs ID tokens with no algorithm this service accepts")
    if (
        not isinstance(id_token, str)
        or len(id_token) > MAX_ID_TOKEN_BYTES
        or not _COMPACT.fullmatch(id_token)
    ):
        raise IdTokenRejected("the ID token is malformed")
    header = _header(id_token)
    alg = header["alg"]
    if alg not in accepted:
        raise IdTokenRejected(f"ID tokens must be signed with {' or '.join(accepted)}")
    key = signing_key(jwks, header.get("kid"), alg)
    try:
        token = jwt.decode(id_token, key, registry=JWSRegistry(algorithms=[alg], strict_check_header=False))
    except BadSignatureError:
        raise IdTokenRejected("the ID token signature is not valid") from None
    except (JoseError, ValueError, TypeError):
        raise IdTokenRejected("the ID token is malformed") from None
    claims = token.claims
    options: dict[str, Any] = {
        "iss": {"essential": True, "value": issuer},
        "aud": {"essential": True, "value": client_id},
        "sub": {"essential": True},
    }
    params = {"nonce": nonce, "client_id": client_id, "access_token": access_token}
    try:
        CodeIDToken(claims, token.header, options, params).validate(now=int(now), leeway=leeway)
    except ExpiredTokenError:
        raise IdTokenRejected("the ID token has expired") from None
    except MissingClaimError:
        raise IdTokenRejected("the ID token lacks a required claim") from None
    except InvalidClaimError as exc:
        reason = _CLAIM_REASONS.get(str(getattr(exc, "claim", "")), "the ID token has an invalid claim")
        raise IdTokenRejected(reason) from None
    except (JoseError, ValueError, TypeError, KeyError):
        raise IdTokenRejected("the ID token has an invalid claim") from None
    if issued_after is not None and claims["iat"] < issued_after - leeway:
        raise IdTokenRejected("the ID token was issued before this login began")
    subject = claims["sub"]
    if not 1 <= len(subject) <= 255:
        raise IdTokenRejected(_CLAIM_REASONS["sub"])
    return IdTokenClaims(
        issuer=claims["iss"],
        subject=subject,
        issued_at=int(claims["iat"]),
        expires_at=int(claims["exp"]),
        email=_optional_text(claims, "email"),
        email_verified=claims.get("email_verified") is True,
        name=_optional_text(claims, "name"),
        given_name=_optional_text(claims, "given_name"),
        family_name=_optional_text(claims, "family_name"),
    )
