"""One exception tree for the whole platform.

Everything a user can cause is a :class:`PlatformError`; the HTTP layer maps it to RFC 9457 problem+json in
one place (``core.http.problems``) and the CLI maps it to one line on stderr and an exit code. Driver errors
are translated into these at the repository boundary and never leak.
"""

from __future__ import annotations

from typing import Any


class PlatformError(Exception):
    """Base of every error the platform reports to a person or a client."""

    status_code: int = 500
    title: str = "Internal error"
    exit_code: int = 1

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class InvalidInput(PlatformError):
    """The request, file or argument is malformed or breaks a rule; nothing was changed."""

    status_code = 422
    title = "Invalid input"
    exit_code = 2


class NotFound(PlatformError):
    status_code = 404
    title = "Not found"
    exit_code = 2


class UnknownMunicipality(NotFound):
    """No municipality answers to this host or path prefix."""

    title = "Unknown municipality"


class NotAuthenticated(PlatformError):
    """No valid credential: log in, or send a valid token or API key."""

    status_code = 401
    title = "Not authenticated"
    exit_code = 1


class Forbidden(PlatformError):
    status_code = 403
    title = "Forbidden"
    exit_code = 1


class CrossTenantAccess(Forbidden):
    """Code bound to one municipality tried to touch another municipality's rows."""

    title = "Cross-municipality access refused"


class Conflict(PlatformError):
    status_code = 409
    title = "Conflict"
    exit_code = 1


class ImproperlyConfigured(PlatformError):
    """Settings, a manifest or a plugin declaration is wrong; the message names the field and the rule."""

    status_code = 500
    title = "Improperly configured"
    exit_code = 2


class PluginError(PlatformError):
    """A plugin could not be loaded, enabled or configured."""

    status_code = 422
    title = "Plugin error"
    exit_code = 2


class ServiceUnavailable(PlatformError):
    status_code = 503
    title = "Service unavailable"
    exit_code = 1


class NotReady(ServiceUnavailable):
    """A dependency of the process (database, broker) does not answer; ``/readyz`` reports it."""

    title = "Not ready"


class DatabaseNotReady(ServiceUnavailable):
    """The database does not answer, or is not migrated to this version of the platform."""

    title = "Database not ready"
