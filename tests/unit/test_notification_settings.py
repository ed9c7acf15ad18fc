"""Notification settings from the environment, the email a delivery becomes, and the webhook signature."""

from __future__ import annotations

import email
import email.policy
import hashlib
import hmac
import uuid

import pytest

from core.exceptions import ImproperlyConfigured
from core.notifications.config import load_notification_settings
from core.notifications.mail import build_message, sender_address
from core.notifications.webhooks import sign


def test_smtp_urls_and_their_defaults() -> None:
    assert load_notification_settings({}).smtp is None
    plain = load_notification_settings({"TSUNAGU_SMTP_URL": "smtp://mail.local"}).smtp
    assert plain is not None and (plain.host, plain.port, plain.security, plain.username) == (
        "mail.local",
        25,
        "none",
        None,
    )
    relay = load_notification_settings(
        {"TSUNAGU_SMTP_URL": "smtp+starttls://town%40x:p%40ss@smtp.example.jp"}
    ).smtp
    assert relay is not None and (relay.port, relay.security, relay.username, relay.password) == (
        587,
        "starttls",
        "town@x",
        "p@ss",
    )
    assert "p@ss" not in repr(relay)
    tls = load_notification_settings({"TSUNAGU_SMTP_URL": "smtps://u:pw@smtp.example.jp:2465"}).smtp
    assert tls is not None and (tls.port, tls.security) == (2465, "tls")


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"TSUNAGU_SMTP_URL": "http://u:secret@mail"}, "TSUNAGU_SMTP_URL must look like"),
        ({"TSUNAGU_SMTP_URL": "smtp://mail:99999"}, "TSUNAGU_SMTP_URL has an invalid port"),
        ({"TSUNAGU_SMTP_FROM": "not an address"}, "TSUNAGU_SMTP_FROM must be one email address"),
        ({"TSUNAGU_SMTP_FROM": "a@x.jp, b@x.jp"}, "TSUNAGU_SMTP_FROM must be one email address"),
        ({"TSUNAGU_NOTIFY_MAX_ATTEMPTS": "0"}, "TSUNAGU_NOTIFY_MAX_ATTEMPTS must be between 1 and 50"),
        ({"TSUNAGU_NOTIFY_MAX_ATTEMPTS": "many"}, "TSUNAGU_NOTIFY_MAX_ATTEMPTS"),
        ({"TSUNAGU_NOTIFY_RETRY_SECONDS": "-1"}, "TSUNAGU_NOTIFY_RETRY_SECONDS must be between 0 and 86400"),
    ],
)
def test_a_bad_setting_names_the_variable_and_never_the_password(
    environ: dict[str, str], message: str
) -> None:
    with pytest.raises(ImproperlyConfigured, match=message) as caught:
        load_notification_settings(environ)
    assert "secret" not in caught.value.detail


def test_retries_back_off_exponentially() -> None:
    settings = load_notification_settings({"TSUNAGU_NOTIFY_RETRY_SECONDS": "30"})
    assert [settings.retry_delay(n) for n in (1, 2, 3, 4)] == [30, 60, 120, 240]
    assert settings.retry_delay(40) == 86_400


def test_an_email_carries_japanese_encoded_and_a_message_id_from_the_delivery() -> None:
    delivery = uuid.uuid4()
    sender = sender_address("noreply@town.miki.lg.jp", "三木町")
    message = build_message(
        delivery_id=delivery,
        sender=sender,
        to="hanako@example.jp",
        subject="予約が確定しました",
        body="本文",
        locale="ja",
    )
    raw = message.as_bytes()
    assert raw.isascii()  # headers RFC 2047-encoded, body transfer-encoded: any mail server takes it
    received = email.message_from_bytes(raw, policy=email.policy.default)
    assert received["Message-ID"] == f"<{delivery}@town.miki.lg.jp>"
    assert received["Subject"] == "予約が確定しました"
    assert str(received["From"]) == "三木町 <noreply@town.miki.lg.jp>"
    assert received.get_content().splitlines() == ["本文"]  # canonical CRLF line ends inside the base64
    named = sender_address("三木町役場 <info@town.miki.lg.jp>", "三木町")
    assert named.display_name == "三木町役場"


def test_the_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    body = b'{"type":"notification"}'
    header = sign(b"whsec_x", body, 1_790_000_000)
    timestamp, digest = (part.split("=", 1)[1] for part in header.split(","))
    assert timestamp == "1790000000"
    assert digest == hmac.new(b"whsec_x", b"1790000000." + body, hashlib.sha256).hexdigest()
    assert sign(b"whsec_x", body + b" ", 1_790_000_000) != header
