"""Email over SMTP: one plain-text message per delivery, with a Message-ID derived from the delivery.

The Message-ID is ``<delivery id>@<sender's domain>``, the same on every attempt of a delivery. A worker that
dies after the server accepted a message and before the delivery was recorded as sent sends it again when the
delivery is retried; the repeat then carries the same Message-ID, which mail software uses to recognise
duplicates. That window cannot be closed from this side: SMTP has no idempotency key.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
import uuid
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime

from core.db.base import utcnow
from core.notifications.channels import DeliveryFailed
from core.notifications.config import SmtpServer, check_address

TIMEOUT_SECONDS = 30.0


def message_id(delivery_id: uuid.UUID, sender: Address) -> str:
    return f"<{delivery_id}@{sender.domain}>"


def sender_address(configured: str, display_name: str) -> Address:
    """The configured sender, named after the municipality when the configuration gives no name."""
    address = check_address(configured, "the sender address")
    if address.display_name:
        return address
    return Address(display_name=display_name, username=address.username, domain=address.domain)


def build_message(
    *, delivery_id: uuid.UUID, sender: Address, to: str, subject: str, body: str, locale: str
) -> EmailMessage:
    message = EmailMessage(policy=SMTP)
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(utcnow())
    message["Message-ID"] = message_id(delivery_id, sender)
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to a notification
    message["Content-Language"] = locale
    message.set_content(body + "\n", charset="utf-8", cte="base64")  # 7-bit clean for any server
    return message


def _send_now(server: SmtpServer, message: EmailMessage) -> None:
    context = ssl.create_default_context()
    if server.security == "tls":
        client: smtplib.SMTP = smtplib.SMTP_SSL(
            server.host, server.port, timeout=TIMEOUT_SECONDS, context=context
        )
    else:
        client = smtplib.SMTP(server.host, server.port, timeout=TIMEOUT_SECONDS)
    with client:
        if server.security == "starttls":
            client.starttls(context=context)
        if server.username:
            client.login(server.username, server.password or "")
        client.send_message(message)


async def send_email(server: SmtpServer, message: EmailMessage) -> None:
    """Hand the message to the SMTP server.

    :raises DeliveryFailed: permanent when the server refuses the recipient or the message for good (5xx),
        else retryable (4xx, login or sender refused, connection trouble). The reason names the code, never
        the address.
    """
    try:
        await asyncio.to_thread(_send_now, server, message)
    except smtplib.SMTPRecipientsRefused as exc:
        codes = sorted({code for code, _ in exc.recipients.values()})
        raise DeliveryFailed(
            f"SMTP server refused the recipient ({', '.join(map(str, codes))})",
            permanent=all(code >= 500 for code in codes),
        ) from exc
    except smtplib.SMTPDataError as exc:  # the message itself refused
        raise DeliveryFailed(f"SMTP server answered {exc.smtp_code}", permanent=exc.smtp_code >= 500) from exc
    except (
        smtplib.SMTPResponseException
    ) as exc:  # login, sender: the deployment's to fix; keep trying meanwhile
        raise DeliveryFailed(f"SMTP server answered {exc.smtp_code}") from exc
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryFailed(f"SMTP failed: {type(exc).__name__}") from exc
