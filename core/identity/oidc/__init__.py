"""Logging in through a municipality's OpenID Connect provider: the relying party (authlib). No Litestar here.

The authorization code flow with PKCE (S256), per municipality, from its manifest's ``[auth.oidc]``:

1. :meth:`OidcRelyingParty.begin_login` makes a fresh ``state``, ``nonce`` and PKCE verifier, stores them
   server-side in ``oidc_login_states`` of the municipality (only the state's SHA-256; good for ten minutes,
   once) and returns the provider's authorization URL. The route also puts ``state`` in a short-lived cookie, so
   the callback is accepted only in the browser that began the login (no login CSRF).
2. :meth:`OidcRelyingParty.finish_login` takes the callback: it claims the state (unknown, used, expired, from
   another municipality or another browser: :class:`LoginStateRejected`, 400), reports a provider ``error``
   (:class:`ProviderRefused`, 400), checks the ``iss`` parameter (RFC 9207), exchanges the code
   (``client_secret_basic`` and the verifier), validates the ID token (:func:`validate_id_token`), finds or
   creates the account by (issuer, subject) and opens a browser session (``core.identity.sessions``). Any
   failure from the exchange on is :class:`OidcLoginFailed` (401) and opens no session; a provider that cannot be
   reached is :class:`ProviderUnavailable` (503).

Discovery documents and JWK Sets are cached per process (``METADATA_TTL``, ``JWKS_TTL``), which is safe to do
because any process can fetch them again; an ID token signed with a key not in the cached set makes one refetch.
Every call to the provider has a timeout (``HTTP_TIMEOUT``).

Accounts: an (issuer, subject) seen before logs in its account. A new one gets a new account; its email is taken
only when the provider says ``email_verified: true`` and no other account has it. An email never links a login to
an existing account, verified or not: each municipality runs its own provider, and one town's provider must not
be able to take over an account another town's residents, staff or admins use. No role is granted here.
"""

from core.identity.oidc._accounts import account_for_login, new_account_fields
from core.identity.oidc._errors import (
    IdTokenRejected,
    LoginStateRejected,
    OidcLoginFailed,
    OidcNotConfigured,
    ProviderRefused,
    ProviderUnavailable,
    UnknownSigningKey,
)
from core.identity.oidc._party import (
    HTTP_TIMEOUT,
    JWKS_TTL,
    METADATA_TTL,
    STATE_LIFETIME,
    CallbackParams,
    LoginRedirect,
    OidcLogin,
    OidcRelyingParty,
    ProviderMetadata,
    accepted_algorithms,
    require_oidc,
    safe_next,
)
from core.identity.oidc._tokens import (
    DEFAULT_LEEWAY,
    SUPPORTED_ALGORITHMS,
    IdTokenClaims,
    signing_key,
    validate_id_token,
)

__all__ = [
    "DEFAULT_LEEWAY",
    "HTTP_TIMEOUT",
    "JWKS_TTL",
    "METADATA_TTL",
    "STATE_LIFETIME",
    "SUPPORTED_ALGORITHMS",
    "CallbackParams",
    "IdTokenClaims",
    "IdTokenRejected",
    "LoginRedirect",
    "LoginStateRejected",
    "OidcLogin",
    "OidcLoginFailed",
    "OidcNotConfigured",
    "OidcRelyingParty",
    "ProviderMetadata",
    "ProviderRefused",
    "ProviderUnavailable",
    "UnknownSigningKey",
    "accepted_algorithms",
    "account_for_login",
    "new_account_fields",
    "require_oidc",
    "safe_next",
    "signing_key",
    "validate_id_token",
]
