"""What the notification tests share: people with a browser session, the notification jobs run from the outbox
in the test's own event loop, a real SMTP server (aiosmtpd) and a real HTTP server for webhooks."""

from __future__ import annotations

import email
import email.policy
import hashlib
import hmac
import http.server
import json
import queue
import secrets
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from core.db.base import utcnow
from core.identity.authn import CSRF_HEADER, SESSION_COOKIE, sha256_hex
from core.identity.models import Account, AuthSession, RoleGrant
from core.jobs import JobContext
from core.notifications import jobs as notification_jobs
from core.notifications.models import Delivery
from core.outbox import OutboxMessage
from core.platform import Platform
from tests.processes import free_port

JOBS = {f"core.{fn.__name__}": fn for fn in notification_jobs.JOBS}


@dataclass(frozen=True)
class Person:
    id: uuid.UUID
    slug: str
    headers: dict[str, str]
    """A browser's: the session cookie and its CSRF token."""


async def person(
    platform: Platform,
    slug: str,
    *roles: str,
    email_address: str | None = None,
    locale: str = "ja",
    account_id: uuid.UUID | None = None,
) -> Person:
    """A person with a browser session in ``slug`` (an existing account when ``account_id`` is given)."""
    municipality = platform.municipality(slug)
    cookie, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    if account_id is None:
        account_id = uuid.uuid4()
        async with platform.sessions.platform() as session:
            session.add(Account(id=account_id, display_name="三木 花子", email=email_address, locale=locale))
    async with platform.sessions.tenant(municipality.id) as session:
        session.add_all([RoleGrant(account_id=account_id, role=role) for role in roles or ("resident",)])
        session.add(
            AuthSession(
                token_hash=sha256_hex(cookie),
                account_id=account_id,
                csrf_token=csrf,
                expires_at=utcnow() + timedelta(hours=1),
            )
        )
    headers = {"cookie": f"{SESSION_COOKIE}={cookie}", CSRF_HEADER: csrf}
    return Person(id=account_id, slug=slug, headers=headers)


async def run_jobs(platform: Platform, *, until: datetime | None = None) -> int:
    """Run the notification jobs waiting in the outbox, as a worker would, until none is due; returns how many.

    Messages are taken the way the relay takes them (marked relayed), then run here, in this event loop, with a
    real :class:`JobContext`. ``until`` pretends the clock says so for ``not_before``.
    """
    ran = 0
    while True:
        due = until or utcnow()
        async with platform.sessions.platform() as session:
            rows = list(
                await session.scalars(
                    select(OutboxMessage)
                    .where(
                        OutboxMessage.relayed_at.is_(None),
                        OutboxMessage.not_before <= due,
                        OutboxMessage.job.in_(list(JOBS)),
                    )
                    .order_by(OutboxMessage.created_at, OutboxMessage.key)
                )
            )
            for row in rows:
                row.relayed_at = utcnow()
        if not rows:
            return ran
        for row in rows:
            ctx = JobContext(
                platform,
                platform.snapshot.by_id[row.municipality_id],
                "core",
                job=row.job,
                message_key=row.key,
            )
            await JOBS[row.job](ctx, **row.kwargs)
            ran += 1


async def deliveries(platform: Platform, slug: str) -> list[Delivery]:
    async with platform.sessions.tenant(platform.municipality(slug).id) as session:
        return list(await session.scalars(select(Delivery).order_by(Delivery.created_at, Delivery.id)))


# --- SMTP -------------------------------------------------------------------------------------------------------


class MailSink:
    """An aiosmtpd handler keeping what it accepts; ``refuse`` makes it answer RCPT with that line instead."""

    def __init__(self) -> None:
        self.received: list[tuple[list[str], EmailMessage]] = []
        self.raw: list[bytes] = []
        self.refuse: str | None = None

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:  # noqa: N802
        if self.refuse is not None:
            return self.refuse
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.raw.append(envelope.original_content)
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        self.received.append((list(envelope.rcpt_tos), message))  # type: ignore[arg-type]
        return "250 Message accepted"


@contextmanager
def smtp_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[MailSink]:
    """A real SMTP server on a free local port, and ``TSUNAGU_SMTP_URL`` pointing at it."""
    sink = MailSink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setenv("TSUNAGU_SMTP_URL", f"smtp://127.0.0.1:{port}")
    monkeypatch.setenv("TSUNAGU_SMTP_FROM", "noreply@tsunagu.example.jp")
    try:
        yield sink
    finally:
        controller.stop()


# --- webhooks --------------------------------------------------------------------------------------------------


@dataclass
class WebhookReceiver:
    """A local HTTP server that checks each POST's signature the way the docs tell receivers to."""

    url: str = ""
    secret: str = ""
    answers: list[int] = field(default_factory=list)
    """Statuses to answer with, in turn; 204 once they run out."""
    received: queue.Queue[dict[str, Any]] = field(default_factory=queue.Queue)

    def check(self, headers: dict[str, str], body: bytes) -> bool:
        """The recipe from docs/notifications.md: recompute HMAC-SHA256 over ``<t>.<body>``, compare."""
        parts = dict(item.split("=", 1) for item in headers.get("tsunagu-signature", "").split(","))
        expected = hmac.new(self.secret.encode(), f"{parts.get('t', '')}.".encode() + body, hashlib.sha256)
        return hmac.compare_digest(expected.hexdigest(), parts.get("v1", ""))

    def posts(self) -> list[dict[str, Any]]:
        found = []
        while not self.received.empty():
            found.append(self.received.get_nowait())
        return found


@contextmanager
def webhook_receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            headers = {k.lower(): v for k, v in self.headers.items()}
            status = receiver.answers.pop(0) if receiver.answers else 204
            receiver.received.put(
                {
                    "path": self.path,
                    "headers": headers,
                    "body": json.loads(body),
                    "raw": body,
                    "signed": receiver.check(headers, body),
                    "answered": status,
                }
            )
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/tsunagu"
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
