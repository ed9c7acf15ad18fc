"""The relying party: provider discovery and keys (cached), the two steps of a login, the ``next`` rule."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx2
import msgspec
import structlog
from authlib.integrations.httpx_client import AsyncOAuth2Client, OAuthError
from authlib.oauth2.client import OAuth2Client
from sqlalchemy import delete, select, update

from core.db.base import utcnow
from core.identity.config import OidcProviderConfig
from core.identity.models import OidcLoginState
from core.identity.oidc._accounts import account_for_login
from core.identity.oidc._errors import (
    IdTokenRejected,
    LoginStateRejected,
    OidcLoginFailed,
    OidcNotConfigured,
    ProviderRefused,
    ProviderUnavailable,
    UnknownSigningKey,
)
from core.identity.oidc._tokens import (
    DEFAULT_LEEWAY,
    MAX_LEEWAY,
    SUPPORTED_ALGORITHMS,
    IdTokenClaims,
    validate_id_token,
)
from core.identity.sessions import IssuedSession, start_session

if TYPE_CHECKING:
    from core.platform import Platform
    from core.tenancy.registry import Municipality

log = structlog.get_logger("core.identity.oidc")

STATE_LIFETIME = timedelta(minutes=10)
"""How long a login may take between leaving for the provider and coming back."""
STALE_STATES_KEPT = timedelta(hours=1)
"""Expired login states are deleted this long after they expire (until then a late callback is told why)."""
HTTP_TIMEOUT = httpx2.Timeout(10.0, connect=5.0)
"""Every request to a provider (discovery, JWKS, token endpoint) gives up after this."""
METADATA_TTL = 3600.0
"""Seconds a discovery document is cached."""
JWKS_TTL = 3600.0
"""Seconds a JWK Set is cached; an unknown ``kid`` refetches it once before that."""
MAX_DOCUMENT_BYTES = 512 * 1024
"""Discovery documents and JWK Sets larger than this are refused."""
NEXT_MAX = 2000
_ERROR_CODE = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]{1,64}")  # RFC 6749 error: NQSCHAR, bounded
_STATE = re.compile(r"[A-Za-z0-9_-]{20,128}")
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


class ProviderMetadata(msgspec.Struct, kw_only=True, frozen=True):
    """The parts of a discovery document (OpenID Connect Discovery 1.0) the relying party uses."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    id_token_signing_alg_values_supported: tuple[str, ...] = ("RS256",)
    authorization_response_iss_parameter_supported: bool = False
    """RFC 9207: when true, every authorization response carries ``iss`` and the callback requires it."""


class LoginRedirect(msgspec.Struct, kw_only=True, frozen=True):
    url: str
    """The provider's authorization URL to send the browser to."""
    state: str
    """To put in the browser-binding cookie, and nowhere else."""


class CallbackParams(msgspec.Struct, kw_only=True, frozen=True):
    """The query of the redirect back from the provider, as it came (all optional)."""

    code: str | None = None
    state: str | None = None
    iss: str | None = None
    error: str | None = None
    error_description: str | None = None


class OidcLogin(msgspec.Struct, kw_only=True, frozen=True):
    session: IssuedSession
    redirect_to: str
    """A path inside the municipality (before any ``/m/<slug>`` prefix)."""
    created_account: bool


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def require_oidc(municipality: Municipality) -> OidcProviderConfig:
    """:raises OidcNotConfigured: the municipality has no OpenID provider."""
    config = municipality.auth.oidc
    if config is None:
        raise OidcNotConfigured(f"{municipality.slug} does not offer OpenID Connect login")
    return config


def safe_next(value: str | None) -> str:
    """``next`` as a path inside this site, or ``/``: never a URL that leaves it (no open redirect).

    Accepted: an absolute path (``/booking/slots?day=1``). Refused, with a 400: anything with a scheme or a host,
    ``//host``, backslashes (browsers read ``/\\host`` as ``//host``), control characters, or over 2000 chars.
    """
    if value is None or value == "":
        return "/"
    parts = urlsplit(value)
    if (
        len(value) > NEXT_MAX
        or not value.startswith("/")
        or value.startswith("//")
        or "\\" in value
        or any(ord(c) < 0x21 or ord(c) == 0x7F for c in value)
        or parts.scheme
        or parts.netloc
    ):
        raise LoginStateRejected("next must be a path on this site, such as /booking")
    return value


def _secure_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in _LOOPBACK)


def accepted_algorithms(metadata: ProviderMetadata) -> tuple[str, ...]:
    """What the provider advertises, narrowed to :data:`SUPPORTED_ALGORITHMS`."""
    return tuple(a for a in SUPPORTED_ALGORITHMS if a in metadata.id_token_signing_alg_values_supported)


# --- the relying party ----------------------------------------------------------------------------------------


class OidcRelyingParty:
    """The OpenID Connect relying party of one app (one process): the provider caches and the two steps.

    :param clock: monotonic seconds, for the caches (tests may pass their own).
    """

    def __init__(
        self,
        *,
        timeout: httpx2.Timeout = HTTP_TIMEOUT,
        metadata_ttl: float = METADATA_TTL,
        jwks_ttl: float = JWKS_TTL,
        leeway: int = DEFAULT_LEEWAY,
        clock: Any = time.monotonic,
    ) -> None:
        if not 0 <= leeway <= MAX_LEEWAY:
            raise ValueError(f"leeway must be between 0 and {MAX_LEEWAY} seconds, got {leeway}")
        self.timeout = timeout
        self.metadata_ttl = metadata_ttl
        self.jwks_ttl = jwks_ttl
        self.leeway = leeway
        self._clock = clock
        self._metadata: dict[str, tuple[float, ProviderMetadata]] = {}
        self._jwks: dict[str, tuple[float, Mapping[str, Any]]] = {}

    # -- talking to the provider ----------------------------------------------------------------------------

    async def _get_json(self, url: str, what: str) -> dict[str, Any]:
        try:
            async with httpx2.AsyncClient(timeout=self.timeout, follow_redirects=False) as client:
                response = await client.get(url, headers={"Accept": "application/json"})
        except httpx2.HTTPError as exc:
            log.warning("oidc.provider_unreachable", what=what, url=url, error=type(exc).__name__)
            raise ProviderUnavailable(f"the OpenID provider did not answer ({what})") from None
        if response.status_code != 200 or len(response.content) > MAX_DOCUMENT_BYTES:
            log.warning("oidc.provider_bad_answer", what=what, url=url, status=response.status_code)
            raise ProviderUnavailable(f"the OpenID provider's {what} could not be read")
        try:
            document = msgspec.json.decode(response.content)
        except (msgspec.DecodeError, UnicodeDecodeError):
            document = None
        if not isinstance(document, dict):
            log.warning("oidc.provider_bad_answer", what=what, url=url, status=response.status_code)
            raise ProviderUnavailable(f"the OpenID provider's {what} could not be read")
        return document

    async def metadata(self, config: OidcProviderConfig) -> ProviderMetadata:
        """The provider's discovery document, cached for ``metadata_ttl`` seconds.

        :raises ProviderUnavailable: unreachable, or a document that does not fit (another ``issuer``, an
            endpoint that is not https).
        """
        cached = self._metadata.get(config.issuer)
        if cached is not None and cached[0] > self._clock():
            return cached[1]
        url = config.issuer.rstrip("/") + "/.well-known/openid-configuration"
        document = await self._get_json(url, "discovery document")
        try:
            metadata = msgspec.convert(document, ProviderMetadata)
        except msgspec.ValidationError as exc:
            log.warning("oidc.discovery_invalid", issuer=config.issuer, error=str(exc))
            raise ProviderUnavailable("the OpenID provider's discovery document could not be read") from None
        endpoints = (metadata.authorization_endpoint, metadata.token_endpoint, metadata.jwks_uri)
        if metadata.issuer != config.issuer or not all(_secure_url(u) for u in endpoints):
            log.error(
                "oidc.discovery_mismatch",
                configured=config.issuer,
                advertised=metadata.issuer,
                endpoints=endpoints,
            )
            raise ProviderUnavailable(
                "the OpenID provider's discovery document does not match its configuration"
            )
        if not accepted_algorithms(metadata):
            log.error(
                "oidc.no_accepted_algorithm",
                issuer=config.issuer,
                advertised=metadata.id_token_signing_alg_values_supported,
            )
            raise ProviderUnavailable(
                "the OpenID provider signs ID tokens with no algorithm this service accepts"
            )
        self._metadata[config.issuer] = (self._clock() + self.metadata_ttl, metadata)
        return metadata

    async def jwks(self, metadata: ProviderMetadata, *, refresh: bool = False) -> Mapping[str, Any]:
        """The provider's JWK Set, cached for ``jwks_ttl`` seconds; ``refresh`` fetches it anew."""
        cached = self._jwks.get(metadata.jwks_uri)
        if not refresh and cached is not None and cached[0] > self._clock():
            return cached[1]
        document = await self._get_json(metadata.jwks_uri, "signing keys")
        if not isinstance(document.get("keys"), list):
            raise ProviderUnavailable("the OpenID provider's signing keys could not be read")
        self._jwks[metadata.jwks_uri] = (self._clock() + self.jwks_ttl, document)
        return document

    def _client(self, config: OidcProviderConfig, redirect_uri: str) -> AsyncOAuth2Client:
        return AsyncOAuth2Client(
            client_id=config.client_id,
            client_secret=_client_secret(config),
            token_endpoint_auth_method="client_secret_basic",
            scope=" ".join(config.scopes),
            redirect_uri=redirect_uri,
            code_challenge_method="S256",
            timeout=self.timeout,
            follow_redirects=False,
        )

    # -- step 1 ----------------------------------------------------------------------------------------------

    async def begin_login(
        self, platform: Platform, municipality: Municipality, *, redirect_uri: str, next_path: str | None
    ) -> LoginRedirect:
        """Store a new login state in ``municipality`` and say where to send the browser.

        :raises OidcNotConfigured: no ``[auth.oidc]`` here.
        :raises LoginStateRejected: ``next_path`` is not a path on this site.
        :raises ProviderUnavailable: the provider (or the client secret) is not there.
        """
        config = require_oidc(municipality)
        redirect_to = safe_next(next_path)
        _client_secret(config)  # fail now, not when the person comes back
        metadata = await self.metadata(config)
        state = secrets.token_urlsafe(32)
        nonce = secrets.token_urlsafe(32)
        verifier = secrets.token_urlsafe(64)
        request = OAuth2Client(
            None,  # only builds the URL: no HTTP session
            client_id=config.client_id,
            scope=" ".join(config.scopes),
            redirect_uri=redirect_uri,
            code_challenge_method="S256",
        )
        url, _ = request.create_authorization_url(
            metadata.authorization_endpoint, state=state, code_verifier=verifier, nonce=nonce
        )
        now = utcnow()
        async with platform.sessions.tenant(municipality.id) as session:
            await session.execute(
                delete(OidcLoginState).where(OidcLoginState.expires_at < now - STALE_STATES_KEPT)
            )
            session.add(
                OidcLoginState(
                    municipality_id=municipality.id,
                    state_hash=sha256_hex(state),
                    nonce=nonce,
                    code_verifier=verifier,
                    redirect_to=redirect_to,
                    created_at=now,
                    expires_at=now + STATE_LIFETIME,
                )
            )
        return LoginRedirect(url=url, state=state)

    # -- step 2 ----------------------------------------------------------------------------------------------

    async def finish_login(
        self,
        platform: Platform,
        municipality: Municipality,
        params: CallbackParams,
        *,
        redirect_uri: str,
        browser_state: str | None,
        replaces: str | None = None,
    ) -> OidcLogin:
        """Finish the login the callback ``params`` answer, and open a session.

        :param browser_state: the state from the browser-binding cookie.
        :param replaces: the session token the browser already had (revoked: a login always gets a new one).
        :raises OidcNotConfigured: no ``[auth.oidc]`` here.
        :raises LoginStateRejected: no such login under way here, in this browser (400).
        :raises ProviderRefused: the provider answered with an ``error`` (400).
        :raises OidcLoginFailed: the code, the token response or the ID token is not good, or the account is
            disabled (401).
        :raises ProviderUnavailable: the provider did not answer (503).
        """
        config = require_oidc(municipality)
        if params.state is None and params.error is not None:
            raise _provider_refused(params.error)
        row = await self._claim_state(platform, municipality, params.state, browser_state)
        if params.error is not None:
            raise _provider_refused(params.error)
        metadata = await self.metadata(config)
        if params.iss is not None or metadata.authorization_response_iss_parameter_supported:
            if params.iss != config.issuer:
                log.warning("oidc.login_failed", reason="iss_mismatch")
                raise OidcLoginFailed("the login answer came from another issuer than this municipality's")
        if not params.code or len(params.code) > 2048:
            raise OidcLoginFailed("the provider sent no authorization code")
        tokens = await self._exchange(config, metadata, params.code, row.code_verifier, redirect_uri)
        claims = await self._verified_claims(config, metadata, tokens, row)
        account, created = await account_for_login(platform, municipality.id, claims)
        if account.disabled_at is not None:
            log.info("oidc.login_failed", reason="account_disabled", account_id=str(account.id))
            raise OidcLoginFailed("this account is disabled")
        async with platform.sessions.tenant(municipality.id) as session:
            token, session_row = await start_session(session, municipality, account.id, replaces=replaces)
        log.info("auth.logged_in", account_id=str(account.id), method="oidc", created=created)
        issued = IssuedSession(
            token=token,
            csrf_token=session_row.csrf_token,
            account_id=account.id,
            display_name=account.display_name,
            expires_at=session_row.expires_at,
        )
        return OidcLogin(session=issued, redirect_to=row.redirect_to, created_account=created)

    async def _claim_state(
        self, platform: Platform, municipality: Municipality, state: str | None, browser_state: str | None
    ) -> OidcLoginState:
        """Mark the login state used (once, even under concurrent callbacks) and return it."""
        if state is None or not _STATE.fullmatch(state):
            raise LoginStateRejected("the login answer has no valid state; start the login again")
        now = utcnow()
        state_hash = sha256_hex(state)
        async with platform.sessions.tenant(municipality.id) as session:
            row = await session.scalar(select(OidcLoginState).where(OidcLoginState.state_hash == state_hash))
            if row is None:
                raise LoginStateRejected("this login is not known here; start the login again")
            if row.used_at is not None:
                raise LoginStateRejected("this login was already used; start the login again")
            if row.expires_at <= now:
                raise LoginStateRejected("this login took too long and expired; start the login again")
            if browser_state is None or not hmac.compare_digest(browser_state.encode(), state.encode()):
                raise LoginStateRejected("this login was started in another browser; start the login again")
            claimed = await session.execute(
                update(OidcLoginState)
                .where(OidcLoginState.state_hash == state_hash, OidcLoginState.used_at.is_(None))
                .values(used_at=now)
            )
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                raise LoginStateRejected("this login was already used; start the login again")
            return row

    async def _exchange(
        self,
        config: OidcProviderConfig,
        metadata: ProviderMetadata,
        code: str,
        verifier: str,
        redirect_uri: str,
    ) -> Mapping[str, Any]:
        try:
            async with self._client(config, redirect_uri) as client:
                tokens = await client.fetch_token(
                    metadata.token_endpoint,
                    grant_type="authorization_code",
                    code=code,
                    code_verifier=verifier,
                )
        except OAuthError as exc:
            log.warning("oidc.login_failed", reason="token_endpoint_error", error=str(exc.error)[:64])
            raise OidcLoginFailed("the provider did not accept the authorization code") from None
        except httpx2.HTTPError as exc:
            log.warning("oidc.provider_unreachable", what="token endpoint", error=type(exc).__name__)
            raise ProviderUnavailable("the OpenID provider did not answer (token endpoint)") from None
        except (ValueError, TypeError, KeyError) as exc:
            log.warning("oidc.login_failed", reason="token_response_unreadable", error=type(exc).__name__)
            raise OidcLoginFailed("the provider's token response could not be read") from None
        if not isinstance(tokens.get("id_token"), str):
            log.warning("oidc.login_failed", reason="no_id_token")
            raise OidcLoginFailed("the provider sent no ID token")
        return tokens

    async def _verified_claims(
        self,
        config: OidcProviderConfig,
        metadata: ProviderMetadata,
        tokens: Mapping[str, Any],
        row: OidcLoginState,
    ) -> IdTokenClaims:
        access_token = tokens.get("access_token")

        def check(jwks: Mapping[str, Any]) -> IdTokenClaims:
            return validate_id_token(
                tokens["id_token"],
                jwks=jwks,
                issuer=config.issuer,
                client_id=config.client_id,
                nonce=row.nonce,
                algorithms=accepted_algorithms(metadata),
                now=time.time(),
                leeway=self.leeway,
                issued_after=row.created_at.timestamp(),
                access_token=access_token if isinstance(access_token, str) else None,
            )

        try:
            try:
                return check(await self.jwks(metadata))
            except UnknownSigningKey:  # the provider may have rotated its keys: fetch them once more
                return check(await self.jwks(metadata, refresh=True))
        except IdTokenRejected as exc:
            log.warning("oidc.login_failed", reason="id_token", detail=exc.detail)
            raise


def _client_secret(config: OidcProviderConfig) -> str:
    secret = config.client_secret()
    if not secret:
        log.error("oidc.client_secret_missing", variable=config.client_secret_env)
        raise ProviderUnavailable("OpenID login is not available right now")
    return secret


def _provider_refused(error: str) -> ProviderRefused:
    code = error if _ERROR_CODE.fullmatch(error) else "invalid_error_code"
    log.info("oidc.provider_refused", error=code)
    return ProviderRefused(f"the OpenID provider refused the login: {code}", errors=[{"error": code}])
