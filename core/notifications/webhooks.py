"""Webhook endpoints: systems a municipality's administrators register to receive its notifications.

Each endpoint gets a secret, shown once when it is registered and kept encrypted (Fernet, key derived from the
platform secret: the platform must read it back to sign). Every POST is signed::

    Tsunagu-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>

so the receiver can check that the body came from this deployment and is fresh (see ``docs/notifications.md``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
import msgspec
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import select

from core.audit import record
from core.db.base import utcnow
from core.exceptions import ImproperlyConfigured, InvalidInput, NotFound
from core.notifications.channels import DeliveryFailed
from core.notifications.models import WebhookEndpoint
from core.notifications.templates import TEMPLATE_NAME
from core.notifications.topics import require_topic
from core.settings import secret_key_bytes

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from core.platform import Platform

SIGNATURE_HEADER = "Tsunagu-Signature"
DELIVERY_HEADER = "Tsunagu-Delivery"
EVENT_HEADER = "Tsunagu-Event"
SECRET_PREFIX = "whsec_"
TIMEOUT_SECONDS = 10.0
MAX_URL = 2000
_WILDCARD = re.compile(r"^[a-z][a-z0-9_]{1,39}\.\*$")
_SECRET_INFO = b"tsunagu webhook secrets v1"


class WebhookOut(msgspec.Struct, kw_only=True, frozen=True):
    id: uuid.UUID
    name: str
    url: str
    templates: list[str]
    topics: list[str]
    created_at: datetime


class WebhookCreated(msgspec.Struct, kw_only=True, frozen=True):
    endpoint: WebhookOut
    secret: str
    """Shown this once: the receiver verifies signatures with it."""


def to_out(endpoint: WebhookEndpoint) -> WebhookOut:
    return WebhookOut(
        id=endpoint.id,
        name=endpoint.name,
        url=endpoint.url,
        templates=list(endpoint.templates),
        topics=list(endpoint.topics),
        created_at=endpoint.created_at,
    )


def _fernet(platform: Platform) -> Fernet:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_SECRET_INFO).derive(
        secret_key_bytes(platform.settings)
    )
    return Fernet(base64.urlsafe_b64encode(derived))


def reveal_secret(platform: Platform, endpoint: WebhookEndpoint) -> bytes:
    """:raises ImproperlyConfigured: the platform secret changed since the endpoint was registered."""
    try:
        return _fernet(platform).decrypt(endpoint.secret)
    except InvalidToken as exc:
        raise ImproperlyConfigured(
            f"webhook {endpoint.id}: its secret cannot be decrypted with this platform secret "
            "(TSUNAGU_SECRET_KEY changed?); remove and register the endpoint again"
        ) from exc


def check_url(url: str) -> str:
    """:raises InvalidInput: not an http(s) URL with a host, or one carrying credentials."""
    url = url.strip()
    parts = urlsplit(url)
    if len(url) > MAX_URL or parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(f"url must be an http:// or https:// URL of at most {MAX_URL} characters")
    if parts.username is not None or parts.password is not None:
        raise InvalidInput("url must not carry a user or password: the signature authenticates the sender")
    return url


async def _check_routes(session: AsyncSession, templates: Sequence[str], topics: Sequence[str]) -> None:
    if not templates and not topics:
        raise InvalidInput("give at least one template or topic the endpoint receives")
    for index, name in enumerate(templates):
        if not (TEMPLATE_NAME.fullmatch(name) or _WILDCARD.fullmatch(name)):
            raise InvalidInput(f"templates.{index}: must be <plugin>.<name> or <plugin>.*, got {name[:60]!r}")
    for topic in topics:
        await require_topic(session, topic)


async def create_webhook(
    session: AsyncSession,
    platform: Platform,
    *,
    name: str,
    url: str,
    templates: Sequence[str] = (),
    topics: Sequence[str] = (),
    actor: str,
) -> WebhookCreated:
    """Register an endpoint in the session's municipality; the secret is in the answer, and nowhere else.

    :raises InvalidInput: a malformed name, URL or template, or nothing to receive.
    :raises NotFound: a topic the municipality does not offer.
    """
    name = " ".join(name.split())
    if not 1 <= len(name) <= 100:
        raise InvalidInput(f"name must be 1 to 100 characters, got {len(name)}")
    url = check_url(url)
    templates, topics = sorted(set(templates)), sorted(set(topics))
    await _check_routes(session, templates, topics)
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    endpoint = WebhookEndpoint(
        id=uuid.uuid4(),
        name=name,
        url=url,
        secret=_fernet(platform).encrypt(secret.encode()),
        templates=templates,
        topics=topics,
        created_at=utcnow(),
    )
    session.add(endpoint)
    await session.flush()
    record(
        session,
        actor=actor,
        action="core.webhook_registered",
        target_type="webhook_endpoint",
        target_id=endpoint.id,
        payload={"templates": templates, "topics": topics},
    )
    return WebhookCreated(endpoint=to_out(endpoint), secret=secret)


async def list_webhooks(session: AsyncSession) -> list[WebhookOut]:
    rows = await session.scalars(
        select(WebhookEndpoint)
        .where(WebhookEndpoint.removed_at.is_(None))
        .order_by(WebhookEndpoint.created_at)
    )
    return [to_out(r) for r in rows]


async def remove_webhook(session: AsyncSession, endpoint_id: uuid.UUID, *, actor: str) -> None:
    """Stop sending to an endpoint (deliveries not sent yet are skipped). :raises NotFound: none here."""
    endpoint = await session.scalar(
        select(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id, WebhookEndpoint.removed_at.is_(None))
    )
    if endpoint is None:
        raise NotFound(f"no webhook endpoint {endpoint_id}")
    endpoint.removed_at = utcnow()
    record(
        session,
        actor=actor,
        action="core.webhook_removed",
        target_type="webhook_endpoint",
        target_id=endpoint_id,
    )


def _matches(patterns: Sequence[str], name: str) -> bool:
    return any(p == name or (p.endswith(".*") and name.startswith(p[:-1])) for p in patterns)


async def endpoints_for(
    session: AsyncSession, *, template: str | None = None, topic: str | None = None
) -> list[WebhookEndpoint]:
    """The municipality's endpoints registered for ``template`` (exactly or by ``<plugin>.*``) or ``topic``."""
    rows = await session.scalars(select(WebhookEndpoint).where(WebhookEndpoint.removed_at.is_(None)))
    return [
        r
        for r in rows
        if (template is not None and _matches(r.templates, template))
        or (topic is not None and topic in r.topics)
    ]


# --- sending ----------------------------------------------------------------------------------------------------


def sign(secret: bytes, body: bytes, timestamp: int) -> str:
    """The ``Tsunagu-Signature`` header value for ``body`` sent at ``timestamp``."""
    digest = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


async def post(
    url: str, secret: bytes, payload: dict[str, Any], *, delivery_id: uuid.UUID, event: str
) -> None:
    """POST the signed payload; any answer but 2xx is a failure (retried by the caller).

    :raises DeliveryFailed: with the status or the kind of network error (never the body: it may echo data).
    """
    body = msgspec.json.encode(payload)
    headers = {
        "content-type": "application/json",
        "user-agent": "tsunagu-webhook/1",
        SIGNATURE_HEADER: sign(secret, body, int(time.time())),
        DELIVERY_HEADER: str(delivery_id),
        EVENT_HEADER: event,
    }
    try:
        async with httpx.AsyncClient(
            timeout=TIMEOUT_SECONDS, follow_redirects=False, trust_env=False
        ) as client:
            response = await client.post(url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        raise DeliveryFailed(f"webhook request failed: {type(exc).__name__}") from exc
    if not 200 <= response.status_code < 300:
        raise DeliveryFailed(f"webhook answered HTTP {response.status_code}")
