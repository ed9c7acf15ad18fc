"""What can go wrong in an OpenID Connect login, and the HTTP status each one is."""

from __future__ import annotations

from core.exceptions import NotAuthenticated, NotFound, PlatformError, ServiceUnavailable


class OidcNotConfigured(NotFound):
    """The municipality has no ``[auth.oidc]``: its OpenID routes do not exist (404)."""

    title = "Not found"


class LoginStateRejected(PlatformError):
    """The callback does not belong to a login under way here: unknown, used, expired, or another browser's."""

    status_code = 400
    title = "Login not recognised"
    exit_code = 2


class ProviderRefused(PlatformError):
    """The provider sent the browser back with an ``error`` (the person declined, or the request was bad)."""

    status_code = 400
    title = "Login refused by the provider"
    exit_code = 2


class OidcLoginFailed(NotAuthenticated):
    """The provider's answer could not be trusted or used; no session was opened (401)."""

    title = "OpenID login failed"


class IdTokenRejected(OidcLoginFailed):
    """The ID token is malformed, not signed by the provider, or not for this login."""

    title = "ID token rejected"


class UnknownSigningKey(IdTokenRejected):
    """The ID token names a key that is not in the JWK Set at hand (which may be out of date)."""


class ProviderUnavailable(ServiceUnavailable):
    """The provider did not answer in time, or answered with something unusable; try again later (503)."""

    title = "OpenID provider unavailable"
