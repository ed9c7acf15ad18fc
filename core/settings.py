"""Process settings, read from ``TSUNAGU_*`` environment variables and validated at start.

Per-municipality configuration does not live here: it is in the database (applied from manifests), so that every
process sees a change without a restart.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import msgspec

from core.exceptions import ImproperlyConfigured

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = f"sqlite+aiosqlite:///{PROJECT_ROOT / 'var' / 'tsunagu.sqlite3'}"
"""The embedded default: a file under the project's ``var/``, wherever the command is run from."""
EMBEDDED_BROKER = "embedded://"

Environment = Literal["development", "production", "test"]


class Settings(msgspec.Struct, kw_only=True, frozen=True):
    """Everything a process needs to start. Build it with :func:`load_settings`, or directly in tests."""

    database_url: str = DEFAULT_DATABASE_URL
    """SQLAlchemy async URL. SQLite (embedded default) or ``postgresql+asyncpg://`` for a shared deployment."""
    broker_url: str = EMBEDDED_BROKER
    """``redis://…``, ``amqp://…``, or ``embedded://`` to run jobs in the serving process."""
    environment: Environment = "development"
    """``production`` switches logs to JSON lines and turns off the development path prefix ``/m/<slug>/``."""
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    """Number of app processes ``tsunagu serve`` starts."""
    log_format: Literal["json", "console", "auto"] = "auto"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    municipalities_dir: str = str(PROJECT_ROOT / "municipalities")
    refresh_interval: float = 0.25
    """Seconds between checks for changes to municipalities and plugin enablement made by other processes."""
    path_prefix_routing: bool | None = None
    """Bind requests by ``/m/<slug>/``; defaults to on outside production."""

    def __post_init__(self) -> None:
        if not self.database_url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ImproperlyConfigured(
                "TSUNAGU_DATABASE_URL must start with sqlite+aiosqlite:// or postgresql+asyncpg://, "
                f"got {redact_url(self.database_url)!r}"
            )
        if not self.broker_url.startswith(("redis://", "rediss://", "amqp://", "amqps://", EMBEDDED_BROKER)):
            raise ImproperlyConfigured(
                f"TSUNAGU_BROKER_URL must start with redis://, amqp:// or be {EMBEDDED_BROKER}, "
                f"got {redact_url(self.broker_url)!r}"
            )
        if not 1 <= self.port <= 65535:
            raise ImproperlyConfigured(f"TSUNAGU_PORT must be between 1 and 65535, got {self.port}")
        if not 1 <= self.workers <= 64:
            raise ImproperlyConfigured(f"TSUNAGU_WORKERS must be between 1 and 64, got {self.workers}")
        if not 0.01 <= self.refresh_interval <= 60:
            raise ImproperlyConfigured(
                f"TSUNAGU_REFRESH_INTERVAL must be between 0.01 and 60 seconds, got {self.refresh_interval}"
            )

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def is_postgres(self) -> bool:
        return self.database_url.startswith("postgresql")

    @property
    def uses_path_prefix(self) -> bool:
        if self.path_prefix_routing is not None:
            return self.path_prefix_routing
        return self.environment != "production"

    @property
    def json_logs(self) -> bool:
        if self.log_format == "auto":
            return self.environment == "production"
        return self.log_format == "json"


_ENV_FIELDS = {
    "database_url": "TSUNAGU_DATABASE_URL",
    "broker_url": "TSUNAGU_BROKER_URL",
    "environment": "TSUNAGU_ENV",
    "host": "TSUNAGU_HOST",
    "port": "TSUNAGU_PORT",
    "workers": "TSUNAGU_WORKERS",
    "log_format": "TSUNAGU_LOG_FORMAT",
    "log_level": "TSUNAGU_LOG_LEVEL",
    "municipalities_dir": "TSUNAGU_MUNICIPALITIES_DIR",
    "refresh_interval": "TSUNAGU_REFRESH_INTERVAL",
    "path_prefix_routing": "TSUNAGU_PATH_PREFIX_ROUTING",
}


def load_settings(environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Settings from the environment (``TSUNAGU_*``), then ``overrides``.

    :raises ImproperlyConfigured: naming the variable and the rule.
    """
    environ = os.environ if environ is None else environ
    raw: dict[str, object] = {}
    for field, variable in _ENV_FIELDS.items():
        if variable in environ and environ[variable] != "":
            raw[field] = environ[variable]
    raw.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return msgspec.convert(raw, Settings, strict=False)
    except msgspec.ValidationError as exc:
        message = str(exc)
        for field, variable in _ENV_FIELDS.items():
            message = message.replace(f"`$.{field}`", variable)
        raise ImproperlyConfigured(f"invalid setting: {message}") from exc


def redact_url(url: str) -> str:
    """Hide the password in a URL before it reaches a message or a log line."""
    scheme, sep, rest = url.partition("://")
    if not sep:  # a malformed URL ("redis//u:pw@host") is exactly the one that ends up in an error message
        scheme, rest = "", url
    if "@" not in rest:
        return url
    credentials, _, location = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{scheme}{sep}{user}:***@{location}" if ":" in credentials else url
