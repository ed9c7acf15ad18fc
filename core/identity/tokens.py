"""Short-lived access tokens for API calls: ES256-signed JWTs (RFC 9068 profile), bound to one municipality.

Validation trusts nothing in the token before its signature is checked: the size is bounded before any parsing;
the header must be exactly ``{"alg": "ES256", "kid": …, "typ": "at+jwt"}`` (no ``jwk``, ``jku``, ``x5u``,
``crit`` or anything else); the key is looked up only by ``kid`` among the published keys, never taken from the
token; the claims are read only after the signature holds. Every rejection is a :class:`TokenRejected`:
:class:`InvalidToken` (401: malformed, forged, expired, wrong issuer or audience) or
:class:`TokenForOtherMunicipality` (403: a good token, issued for another municipality).
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import msgspec
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey

from core.exceptions import Forbidden, ImproperlyConfigured, InvalidInput, NotAuthenticated, PlatformError
from core.identity.keys import ALGORITHM, MAX_CLOCK_SKEW, MAX_TOKEN_LIFETIME, KeyRing, jwks_verification_key

HEADER_TYPE = "at+jwt"
"""The ``typ`` header of access tokens (RFC 9068), so that no other JWT signed by the same keys passes."""
MAX_TOKEN_BYTES = 8 * 1024
DEFAULT_LIFETIME = timedelta(minutes=10)
DEFAULT_LEEWAY = timedelta(seconds=30)

TokenType = Literal["account", "api_key"]

_COMPACT = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
_SCOPE = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")  # RFC 6749 scope-token
_REGISTRY = jws.JWSRegistry(algorithms=[ALGORITHM])
# msgspec raises UnicodeDecodeError, not DecodeError, for a string that is not UTF-8.
_JSON_ERRORS = (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError)


class TokenRejected(PlatformError):
    """Base of every refusal of an access token; the subclass says which HTTP status it is."""


class InvalidToken(TokenRejected, NotAuthenticated):
    """The token is malformed, not signed by a published key, expired, or not meant for this service (401)."""

    title = "Invalid token"
    headers = {"WWW-Authenticate": 'Bearer error="invalid_token"'}
    """RFC 6750 challenge; the problem mapper sends an exception's ``headers`` with a 401."""


class TokenExpired(InvalidToken):
    """A genuine token past its ``exp``: the client should get a new one."""

    title = "Token expired"


class TokenForOtherMunicipality(TokenRejected, Forbidden):
    """A valid token issued for another municipality than the one the request is bound to (403)."""

    title = "Token for another municipality"


class AccessClaims(msgspec.Struct, kw_only=True, frozen=True):
    """What a valid access token says. Times are seconds since the epoch (JWT NumericDate)."""

    sub: str
    """The account id (``typ="account"``) or the API key id (``typ="api_key"``)."""
    mid: int
    """The municipality the token was issued for; it is good there only."""
    scopes: tuple[str, ...]
    iat: int
    exp: int
    nbf: int
    jti: str
    typ: TokenType

    @property
    def expires_at(self) -> datetime:
        return datetime.fromtimestamp(self.exp, UTC)


class _Payload(AccessClaims, kw_only=True, frozen=True):
    iss: str
    aud: str | list[str]


class _Header(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    alg: str
    kid: str
    typ: str


# --- Issuing ----------------------------------------------------------------------------------------------


def issue_access_token(
    ring: KeyRing,
    *,
    subject: str,
    municipality_id: int,
    scopes: Sequence[str],
    audience: str | Sequence[str],
    issuer: str,
    now: datetime,
    lifetime: timedelta = DEFAULT_LIFETIME,
    token_type: TokenType = "account",
    jti: str | None = None,
) -> str:
    """An access token signed by the ring's current key.

    :param lifetime: whole seconds, at least one, at most the signing key's ``token_lifetime`` (at most 1 h).
    :param jti: the token id; a random one by default.
    :raises InvalidInput: an empty subject, issuer or audience, a scope that is not an RFC 6749 scope-token,
        or so many scopes that the token would exceed :data:`MAX_TOKEN_BYTES`.
    :raises ImproperlyConfigured: the lifetime is out of range.
    :raises NoActiveSigningKey: no key of the ring is active at ``now``.
    """
    key = ring.current(now)
    seconds = int(lifetime.total_seconds())
    if seconds < 1 or lifetime > key.token_lifetime:
        raise ImproperlyConfigured(
            f"access token lifetime must be between 1 s and {key.token_lifetime}, got {lifetime}"
        )
    if not subject or not issuer:
        raise InvalidInput("an access token needs a subject and an issuer")
    if isinstance(municipality_id, bool) or not isinstance(municipality_id, int):
        raise InvalidInput(f"municipality_id must be an integer, got {municipality_id!r}")
    bad = [scope for scope in scopes if not isinstance(scope, str) or not _SCOPE.fullmatch(scope)]
    if bad:
        raise InvalidInput(f"not a valid scope: {bad[0]!r}")
    aud: str | list[str] = audience if isinstance(audience, str) else list(audience)
    if not aud or not all(isinstance(a, str) and a for a in ([aud] if isinstance(aud, str) else aud)):
        raise InvalidInput("an access token needs a non-empty audience")
    iat = int(now.timestamp())
    payload = _Payload(
        sub=subject,
        mid=municipality_id,
        scopes=tuple(scopes),
        iat=iat,
        nbf=iat,
        exp=iat + seconds,
        jti=jti or secrets.token_urlsafe(16),
        typ=token_type,
        iss=issuer,
        aud=aud,
    )
    header = {"alg": ALGORITHM, "kid": key.kid, "typ": HEADER_TYPE}
    token = jws.serialize_compact(header, msgspec.json.encode(payload), key.private_key, registry=_REGISTRY)
    if len(token) > MAX_TOKEN_BYTES:
        raise InvalidInput(
            f"the access token would be longer than {MAX_TOKEN_BYTES} bytes; ask for fewer scopes"
        )
    return token


# --- Validating -------------------------------------------------------------------------------------------


def validate_access_token(
    token: str | bytes,
    keys: KeyRing | Mapping[str, Any],
    *,
    issuer: str,
    audience: str,
    municipality_id: int,
    now: datetime,
    leeway: timedelta = DEFAULT_LEEWAY,
) -> AccessClaims:
    """The claims of ``token`` if it is a valid access token for ``audience`` at ``municipality_id``.

    :param keys: the key ring (its published keys verify), or a public JWK Set as :meth:`KeyRing.jwks` makes.
    :param leeway: clock skew allowed on ``exp``, ``nbf`` and ``iat``; at most :data:`MAX_CLOCK_SKEW`.
    :raises TokenExpired: a genuine token past ``exp`` (+ leeway).
    :raises InvalidToken: anything else wrong with the token.
    :raises TokenForOtherMunicipality: a valid token whose ``mid`` is another municipality.
    :raises ImproperlyConfigured: ``leeway`` is out of range, or the JWK Set entry for the token's key is bad.
    """
    if not timedelta(0) <= leeway <= MAX_CLOCK_SKEW:
        raise ImproperlyConfigured(f"token leeway must be between 0 and {MAX_CLOCK_SKEW}, got {leeway}")
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"now must be a time-zone aware datetime, got naive {now!r}")
    text = _compact_text(token)
    header = _header(text)
    if isinstance(keys, KeyRing):
        key = keys.verification_key(header.kid, now)
    else:
        key = jwks_verification_key(keys, header.kid)
    if key is None:
        raise InvalidToken("the token is signed with an unknown key")
    claims = _verified_claims(text, key)
    _check_claims(
        claims, issuer=issuer, audience=audience, now=now.timestamp(), leeway=leeway.total_seconds()
    )
    if claims.mid != municipality_id:
        raise TokenForOtherMunicipality("this access token was issued for another municipality")
    return AccessClaims(
        sub=claims.sub,
        mid=claims.mid,
        scopes=claims.scopes,
        iat=claims.iat,
        exp=claims.exp,
        nbf=claims.nbf,
        jti=claims.jti,
        typ=claims.typ,
    )


def _compact_text(token: object) -> str:
    """The token as text, if it has the shape of a JWS compact serialisation and is not oversize."""
    if isinstance(token, bytes):
        if len(token) > MAX_TOKEN_BYTES:
            raise InvalidToken(f"the token is longer than {MAX_TOKEN_BYTES} bytes")
        try:
            token = token.decode("ascii")
        except UnicodeDecodeError:
            raise InvalidToken("the token is not a JWT") from None
    if not isinstance(token, str):
        raise InvalidToken("the token is not a JWT")
    if len(token) > MAX_TOKEN_BYTES:
        raise InvalidToken(f"the token is longer than {MAX_TOKEN_BYTES} bytes")
    if not _COMPACT.fullmatch(token):
        raise InvalidToken("the token is not a JWT")
    return token


def _b64decode(segment: str) -> bytes:
    """Strict base64url without padding: the canonical encoding only, so no two strings mean the same bytes."""
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        raise InvalidToken("the token is not a JWT") from None
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode() != segment:
        raise InvalidToken("the token is not a JWT")
    return raw


def _header(token: str) -> _Header:
    try:
        header = msgspec.json.decode(_b64decode(token.partition(".")[0]), type=_Header)
    except _JSON_ERRORS:
        raise InvalidToken(
            "the token header is malformed or has parameters this service does not accept"
        ) from None
    if header.alg != ALGORITHM:
        raise InvalidToken(f"tokens must be signed with {ALGORITHM}")
    if header.typ != HEADER_TYPE:
        raise InvalidToken(f"the token is not an access token (typ must be {HEADER_TYPE!r})")
    return header


def _verified_claims(token: str, key: ECKey) -> _Payload:
    try:
        payload = jws.deserialize_compact(token, key, registry=_REGISTRY).payload
    except (JoseError, ValueError, TypeError):
        raise InvalidToken("the token signature is not valid") from None
    try:
        return msgspec.json.decode(payload or b"", type=_Payload)
    except _JSON_ERRORS:
        raise InvalidToken("the token claims are malformed") from None


def _check_claims(claims: _Payload, *, issuer: str, audience: str, now: float, leeway: float) -> None:
    if claims.iss != issuer:
        raise InvalidToken("the token was issued by another issuer")
    if audience not in ([claims.aud] if isinstance(claims.aud, str) else claims.aud):
        raise InvalidToken("the token is not meant for this service")
    if not claims.iat <= claims.nbf < claims.exp:
        raise InvalidToken("the token's times are inconsistent")
    if claims.exp - claims.iat > MAX_TOKEN_LIFETIME.total_seconds():
        raise InvalidToken(f"the token lives longer than {MAX_TOKEN_LIFETIME}")
    if claims.iat > now + leeway:
        raise InvalidToken("the token was issued in the future")
    if claims.nbf > now + leeway:
        raise InvalidToken("the token is not valid yet")
    if claims.exp <= now - leeway:
        raise TokenExpired("the token has expired")
