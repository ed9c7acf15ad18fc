"""``POST /auth/token`` of each municipality, and the platform's ``GET /.well-known/jwks.json``.

``POST /auth/token`` with ``X-API-Key`` (or a session cookie and its ``X-CSRF-Token``) answers in the style of
RFC 6749 section 5.1: ``{"access_token", "token_type": "Bearer", "expires_in", "scope"}``, never cached. The
body is optional: ``{"scope": "notices:read"}`` (JSON) or ``scope=notices:read`` (a form) asks for fewer scopes.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

import msgspec
from litestar import Request, Response, get, post
from litestar.handlers import HTTPRouteHandler

from core.db.base import utcnow
from core.exceptions import Forbidden, InvalidInput
from core.http.dependencies import MunicipalityDep, PlatformDep
from core.identity.access import issue_token, parse_scope
from core.identity.authn import authenticate
from core.identity.keystore import signing_keys

JWKS_PATH = "/.well-known/jwks.json"
JWKS_MAX_AGE = 300
"""Seconds clients may cache the JWKS; rotations pre-publish new keys for much longer (a day by default)."""
_FORM = "application/x-www-form-urlencoded"


class TokenRequest(msgspec.Struct, kw_only=True, frozen=True):
    scope: str | None = None
    """Space-separated scopes; absent: every scope the caller may have."""


class TokenResponse(msgspec.Struct, kw_only=True, frozen=True):
    access_token: str
    token_type: str
    """Always ``Bearer``: send it as ``Authorization: Bearer <access_token>``."""
    expires_in: int
    scope: str
    """The scopes granted, space-separated (for a person: those asked for that they hold)."""


class JsonWebKey(msgspec.Struct, kw_only=True, frozen=True):
    kty: str
    crv: str
    x: str
    y: str
    kid: str
    use: str
    alg: str


class JsonWebKeySet(msgspec.Struct, kw_only=True, frozen=True):
    keys: list[JsonWebKey]


def _requested(body: bytes, content_type: str) -> tuple[str, ...] | None:
    if not body.strip():
        return None
    if content_type.split(";", 1)[0].strip().lower() == _FORM:
        try:
            values = parse_qs(body.decode("latin-1"), max_num_fields=20).get("scope")
        except ValueError:
            raise InvalidInput("the form has too many fields") from None
        return parse_scope(" ".join(values)) if values else None
    try:
        request = msgspec.json.decode(body, type=TokenRequest)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError) as exc:
        raise InvalidInput(f'the body must be JSON like {{"scope": "a b"}} or a form: {exc}') from None
    return parse_scope(request.scope)


@post(
    "/auth/token",
    tags=["auth"],
    status_code=200,
    summary="An access token for an API key or the signed-in person",
    description=(
        'Send X-API-Key, or the session cookie with X-CSRF-Token. Optional body: JSON {"scope": "a b"} '
        "or the form field scope, to ask for fewer scopes. Answers as RFC 6749 section 5.1."
    ),
    request_max_body_size=16 * 1024,
)
async def token_endpoint(
    request: Request[Any, Any, Any], platform: PlatformDep, municipality: MunicipalityDep
) -> Response[TokenResponse]:
    if request.headers.get("authorization"):
        raise Forbidden("an access token cannot be exchanged for another; send X-API-Key or use a session")
    requested = _requested(await request.body(), request.headers.get("content-type", ""))
    principal = await authenticate(platform, request)
    issued = await issue_token(platform, municipality, principal, requested)
    body = TokenResponse(
        access_token=issued.access_token,
        token_type="Bearer",
        expires_in=issued.expires_in,
        scope=" ".join(issued.scopes),
    )
    return Response(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


@get(JWKS_PATH, tags=["platform"], summary="The public keys that verify access tokens (JWK Set)")
async def jwks(platform: PlatformDep) -> Response[JsonWebKeySet]:
    ring = await signing_keys(platform).ring()
    body = msgspec.convert(ring.jwks(utcnow()), JsonWebKeySet)
    return Response(body, headers={"Cache-Control": f"public, max-age={JWKS_MAX_AGE}"})


TOKEN_ROUTES: list[HTTPRouteHandler] = [token_endpoint, jwks]
