"""How people log in to one municipality: its manifest's ``[auth]`` table.

Secrets never go in a manifest (manifests are files in version control): the OpenID client secret is read from
the environment variable the manifest names.
"""

from __future__ import annotations

import os
import re
from urllib.parse import urlsplit

import msgspec

_ENV_NAME = re.compile(r"TSUNAGU_[A-Z0-9_]{1,60}")
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


class OidcProviderConfig(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    issuer: str
    """The provider's issuer URL; its discovery document is ``<issuer>/.well-known/openid-configuration``."""
    client_id: str
    client_secret_env: str
    """Name of the environment variable holding the client secret (``TSUNAGU_…``)."""
    scopes: tuple[str, ...] = ("openid", "email", "profile")
    display_name: str = ""
    """What the login page calls the provider, e.g. 「三木町ID」."""

    def __post_init__(self) -> None:
        parts = urlsplit(self.issuer)
        loopback = parts.hostname in _LOOPBACK
        if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
            raise ValueError(f"issuer must be an https:// URL (http only on loopback), got {self.issuer!r}")
        if parts.query or parts.fragment:
            raise ValueError(f"issuer must not have a query or fragment, got {self.issuer!r}")
        if not self.client_id.strip():
            raise ValueError("client_id must not be empty")
        if not _ENV_NAME.fullmatch(self.client_secret_env):
            raise ValueError(
                f"client_secret_env must name an environment variable TSUNAGU_<NAME>, got {self.client_secret_env!r}"
            )
        if "openid" not in self.scopes:
            raise ValueError("scopes must include 'openid'")

    def client_secret(self) -> str | None:
        return os.environ.get(self.client_secret_env)


class AuthConfig(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    password_login: bool = True
    """Local passwords: for towns without an OpenID provider, and for the demo."""
    oidc: OidcProviderConfig | None = None
    session_hours: int = 12
    """How long a browser session lasts without activity ends it sooner (1 to 720)."""

    def __post_init__(self) -> None:
        if not 1 <= self.session_hours <= 720:
            raise ValueError(f"session_hours must be between 1 and 720, got {self.session_hours}")


DEFAULT_AUTH = AuthConfig()


def auth_config(stored: dict[str, object] | None) -> AuthConfig:
    """The ``auth`` column back as a Struct (``None`` means the defaults)."""
    return DEFAULT_AUTH if stored is None else msgspec.convert(stored, AuthConfig)
