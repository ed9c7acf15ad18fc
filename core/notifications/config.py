"""Deployment settings of notifications, read from ``TSUNAGU_SMTP_*`` and ``TSUNAGU_NOTIFY_*`` and validated.

They are read where they are used (the process that queues a message and the worker that sends it), so that a
worker started with another environment is honest about it: a worker without ``TSUNAGU_SMTP_URL`` fails email
deliveries with that reason instead of dropping them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from email.headerregistry import Address
from email.policy import SMTP
from functools import lru_cache
from urllib.parse import unquote, urlsplit

import msgspec

from core.exceptions import ImproperlyConfigured
from core.settings import redact_url

SMTP_SCHEMES = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}

ENV_VARIABLES = {
    "smtp_url": "TSUNAGU_SMTP_URL",
    "smtp_from": "TSUNAGU_SMTP_FROM",
    "max_attempts": "TSUNAGU_NOTIFY_MAX_ATTEMPTS",
    "retry_seconds": "TSUNAGU_NOTIFY_RETRY_SECONDS",
}


class SmtpServer(msgspec.Struct, kw_only=True, frozen=True):
    host: str
    port: int
    security: str
    """``none`` (smtp://), ``starttls`` (smtp+starttls://) or ``tls`` (smtps://)."""
    username: str | None = None
    password: str | None = None

    def __repr__(self) -> str:  # never the password
        return f"SmtpServer(host={self.host!r}, port={self.port}, security={self.security!r})"


class NotificationSettings(msgspec.Struct, kw_only=True, frozen=True):
    smtp_url: str | None = None
    """``smtp://``, ``smtp+starttls://`` or ``smtps://[user:password@]host[:port]``; unset: no email."""
    smtp_from: str = "noreply@localhost"
    """The sender of email where the municipality has set none (``tsunagu notify config --email-from``)."""
    max_attempts: int = 8
    """Attempts of one delivery (email, webhook, plugin channel) before it is marked failed."""
    retry_seconds: float = 30.0
    """Wait before the second attempt; doubled before each further one."""

    def __repr__(self) -> str:
        url = redact_url(self.smtp_url) if self.smtp_url else None
        return f"NotificationSettings(smtp_url={url!r}, smtp_from={self.smtp_from!r})"

    def __post_init__(self) -> None:
        if self.smtp_url is not None:
            parse_smtp_url(self.smtp_url)
        check_address(self.smtp_from, "TSUNAGU_SMTP_FROM")
        if not 1 <= self.max_attempts <= 50:
            raise ImproperlyConfigured(
                f"TSUNAGU_NOTIFY_MAX_ATTEMPTS must be between 1 and 50, got {self.max_attempts}"
            )
        if not 0 <= self.retry_seconds <= 86_400:
            raise ImproperlyConfigured(
                f"TSUNAGU_NOTIFY_RETRY_SECONDS must be between 0 and 86400, got {self.retry_seconds}"
            )

    @property
    def smtp(self) -> SmtpServer | None:
        return parse_smtp_url(self.smtp_url) if self.smtp_url else None

    def retry_delay(self, attempts: int) -> float:
        """Seconds to wait after ``attempts`` failed attempts: 1x, 2x, 4x ... ``retry_seconds``, at most a day."""
        return min(self.retry_seconds * 2 ** (attempts - 1), 86_400.0)


def parse_smtp_url(url: str) -> SmtpServer:
    """:raises ImproperlyConfigured: naming ``TSUNAGU_SMTP_URL`` and the rule (the password never shown)."""
    parts = urlsplit(url)
    if parts.scheme not in SMTP_SCHEMES or not parts.hostname:
        raise ImproperlyConfigured(
            "TSUNAGU_SMTP_URL must look like smtp://host:25, smtp+starttls://user:password@host:587 or "
            f"smtps://user:password@host:465, got {redact_url(url)!r}"
        )
    try:
        port = parts.port or SMTP_SCHEMES[parts.scheme]
    except ValueError:
        raise ImproperlyConfigured(f"TSUNAGU_SMTP_URL has an invalid port: {redact_url(url)!r}") from None
    security = {"smtp": "none", "smtp+starttls": "starttls", "smtps": "tls"}[parts.scheme]
    return SmtpServer(
        host=parts.hostname,
        port=port,
        security=security,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


def check_address(value: str, where: str) -> Address:
    """One mailbox (``noreply@town.example.jp`` or ``三木町 <noreply@town.example.jp>``).

    :raises ImproperlyConfigured: naming ``where``.
    """
    try:
        header = SMTP.header_factory("From", value)
        addresses = header.addresses  # type: ignore[attr-defined]
        defects = header.defects  # type: ignore[attr-defined]
    except (IndexError, ValueError, TypeError):
        addresses, defects = (), ("unparsable",)
    if len(addresses) != 1 or defects or not addresses[0].username or not addresses[0].domain:
        raise ImproperlyConfigured(
            f"{where} must be one email address (noreply@town.example.jp, or 'Name <noreply@...>'), got {value!r}"
        )
    return addresses[0]


def load_notification_settings(environ: Mapping[str, str] | None = None) -> NotificationSettings:
    """The settings from the environment (cached while it does not change).

    :raises ImproperlyConfigured: naming the variable and the rule.
    """
    environ = os.environ if environ is None else environ
    return _load(tuple((field, environ.get(variable) or None) for field, variable in ENV_VARIABLES.items()))


@lru_cache(maxsize=8)
def _load(values: tuple[tuple[str, str | None], ...]) -> NotificationSettings:
    raw = {field: value for field, value in values if value is not None}
    try:
        return msgspec.convert(raw, NotificationSettings, strict=False)
    except msgspec.ValidationError as exc:
        message = str(exc)
        for field, variable in ENV_VARIABLES.items():
            message = message.replace(f"`$.{field}`", variable)
        raise ImproperlyConfigured(f"invalid setting: {message}") from exc
