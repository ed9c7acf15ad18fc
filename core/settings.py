"""Process settings, read from ``TSUNAGU_*`` environment variables and validated at start.

Per-municipality configuration does not live here: it is in the database (applied from manifests), so that every
process sees a change without a restart.
"""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import msgspec

from core.exceptions import ImproperlyConfigured

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = f"sqlite+aiosqlite:///{PROJECT_ROOT / 'var' / 'tsunagu.sqlite3'}"
"""The embedded default: a file under the project's ``var/``, wherever the command is run from."""
EMBEDDED_BROKER = "embedded://"
MIN_SECRET_KEY_BYTES = 32
SECRET_KEY_FILE = "secret-key"
"""Outside production, the generated ``TSUNAGU_SECRET_KEY`` is kept in this file next to the embedded database."""

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
    secret_key: str | None = None
    """The platform secret (at least 32 bytes): keys derived from it protect what is stored, such as the signing
    keys of access tokens. Required in production; elsewhere, when unset, one is generated and kept in
    ``secret-key`` next to the embedded database (see :func:`secret_key_bytes`)."""
    public_url: str | None = None
    """The deployment's base URL, as clients reach it: the issuer and audience of access tokens.
    Default ``http://{host}:{port}`` (see :attr:`base_url`)."""

    def __repr__(self) -> str:  # the secret never reaches a log line or a traceback
        fields = {f: getattr(self, f) for f in self.__struct_fields__}
        if fields["secret_key"] is not None:
            fields["secret_key"] = "***"
        return f"Settings({', '.join(f'{k}={v!r}' for k, v in fields.items())})"

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
        if self.secret_key is not None:
            _check_secret_key(self.secret_key.encode(), "TSUNAGU_SECRET_KEY")
        if self.public_url is not None:
            _check_public_url(self.public_url)

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

    @property
    def base_url(self) -> str:
        """``TSUNAGU_PUBLIC_URL`` without a trailing slash, or ``http://{host}:{port}``."""
        if self.public_url is not None:
            return self.public_url.rstrip("/")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


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
    "secret_key": "TSUNAGU_SECRET_KEY",
    "public_url": "TSUNAGU_PUBLIC_URL",
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


# --- the platform secret ----------------------------------------------------------------------------------


def _check_secret_key(secret: bytes, where: str) -> None:
    if len(secret) < MIN_SECRET_KEY_BYTES:
        raise ImproperlyConfigured(
            f"{where} must be at least {MIN_SECRET_KEY_BYTES} bytes, got {len(secret)}; "
            "make one with: python3 -c 'import secrets; print(secrets.token_urlsafe(48))'"
        )


def _check_public_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ImproperlyConfigured(f"TSUNAGU_PUBLIC_URL must be an http:// or https:// URL, got {url!r}")
    if parts.username is not None or parts.password is not None or parts.query or parts.fragment:
        raise ImproperlyConfigured(
            f"TSUNAGU_PUBLIC_URL must have no user, query or fragment, got {redact_url(url)!r}"
        )


def secret_key_file(settings: Settings) -> Path:
    """Where the generated secret is kept outside production: ``secret-key`` in the folder of the SQLite file,
    or the project's ``var/`` for PostgreSQL and in-memory databases. Processes sharing a database share it."""
    if settings.is_sqlite:
        from sqlalchemy.engine import make_url

        database = make_url(settings.database_url).database
        if database and database != ":memory:" and not database.startswith("file:"):
            return Path(database).resolve().parent / SECRET_KEY_FILE
    return PROJECT_ROOT / "var" / SECRET_KEY_FILE


def secret_key_bytes(settings: Settings) -> bytes:
    """The platform secret: ``TSUNAGU_SECRET_KEY``, or outside production the generated one of
    :func:`secret_key_file` (made on first use, mode 0600; concurrent first uses agree on one).

    :raises ImproperlyConfigured: unset in production; the file is readable by others or too short.
    """
    if settings.secret_key is not None:
        return settings.secret_key.encode()
    if settings.environment == "production":
        raise ImproperlyConfigured(
            "TSUNAGU_SECRET_KEY must be set when TSUNAGU_ENV=production (at least "
            f"{MIN_SECRET_KEY_BYTES} bytes, the same in every process: the platform's keys derive from it). "
            "Make one with: python3 -c 'import secrets; print(secrets.token_urlsafe(48))'"
        )
    path = secret_key_file(settings)
    try:
        return _read_secret_file(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as file:
            file.write(secrets.token_urlsafe(48) + "\n")
        try:
            os.link(draft, path)  # atomic, and never replaces: the first process to get here wins
        except FileExistsError:
            pass
    finally:
        draft.unlink(missing_ok=True)
    return _read_secret_file(path)


def _read_secret_file(path: Path) -> bytes:
    mode = path.stat().st_mode
    if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ImproperlyConfigured(
            f"{path} holds the platform secret but other users may read it (mode {stat.S_IMODE(mode):04o}); "
            f"run: chmod 600 {path}"
        )
    secret = path.read_bytes().strip()
    _check_secret_key(secret, str(path))
    return secret
