"""Payment codes shown as QR codes by a shop: signed, so a code cannot be altered or made up.

A code is ``TSGC1.<payload>.<mac>``: the payload is compact JSON in base64url, the MAC an HMAC-SHA256 of both
first parts under a key derived (HKDF) from ``TSUNAGU_SECRET_KEY``. The payload names the municipality, the shop
and the currency; a per-sale code adds the amount, an expiry and a sale id (a sale is paid at most once). A code
changed by one character, made for another municipality, or past its expiry is refused.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import io
import uuid
from datetime import UTC, datetime
from functools import lru_cache
from typing import Literal

import msgspec
import segno

from core.audit.keys import hkdf_sha256
from core.exceptions import InvalidInput
from core.settings import Settings, secret_key_bytes

PREFIX = "TSGC1"
MAX_CODE_LENGTH = 600
_INFO = b"tsunagu currency payment codes v1"


class CodePayload(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True, forbid_unknown_fields=True):
    m: str
    """Municipality slug."""
    s: str
    """Merchant id (hex)."""
    c: str
    """Currency code."""
    a: int | None = None
    """Amount (per-sale codes)."""
    x: int | None = None
    """Expiry, Unix seconds (per-sale codes)."""
    i: str | None = None
    """Sale id (hex; per-sale codes)."""


class PaymentCode(msgspec.Struct, kw_only=True, frozen=True):
    """A verified code."""

    municipality: str
    merchant_id: uuid.UUID
    currency: str
    amount: int | None = None
    expires_at: datetime | None = None
    sale_id: uuid.UUID | None = None

    @property
    def is_sale(self) -> bool:
        return self.sale_id is not None


def code_key(settings: Settings) -> bytes:
    """The MAC key for payment codes, from the platform secret."""
    return _derive(secret_key_bytes(settings))


@lru_cache(maxsize=8)
def _derive(secret: bytes) -> bytes:
    return hkdf_sha256(secret, _INFO)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, signed: str) -> str:
    return _b64(hmac.new(key, signed.encode("ascii"), hashlib.sha256).digest())


def make_code(
    key: bytes,
    *,
    municipality: str,
    merchant_id: uuid.UUID,
    currency: str,
    amount: int | None = None,
    expires_at: datetime | None = None,
    sale_id: uuid.UUID | None = None,
) -> str:
    """A shop's fixed code (no amount), or a per-sale code (amount, expiry and sale id together)."""
    if (amount is None) != (expires_at is None) or (amount is None) != (sale_id is None):
        raise ValueError("a per-sale code needs amount, expiry and sale id together")
    payload = CodePayload(
        m=municipality,
        s=merchant_id.hex,
        c=currency,
        a=amount,
        x=int(expires_at.timestamp()) if expires_at is not None else None,
        i=sale_id.hex if sale_id is not None else None,
    )
    signed = f"{PREFIX}.{_b64(msgspec.json.encode(payload))}"
    return f"{signed}.{_mac(key, signed)}"


def read_code(key: bytes, text: str, *, municipality: str, now: datetime) -> PaymentCode:
    """Verify a scanned code for this municipality.

    :raises InvalidInput: (field ``code``) not a code of ours, altered, another municipality's, or expired.
    """
    text = text.strip()
    parts = text.split(".")
    if len(text) > MAX_CODE_LENGTH or len(parts) != 3 or parts[0] != PREFIX:
        raise InvalidInput("code: not a payment code of this platform")
    signed = f"{parts[0]}.{parts[1]}"
    if not hmac.compare_digest(_mac(key, signed), parts[2]):
        raise InvalidInput("code: the code's signature does not match; it was altered or is not genuine")
    try:
        payload = msgspec.json.decode(_unb64(parts[1]), type=CodePayload)
        merchant_id = uuid.UUID(hex=payload.s)
        sale_id = uuid.UUID(hex=payload.i) if payload.i is not None else None
    except (msgspec.DecodeError, msgspec.ValidationError, ValueError, binascii.Error) as exc:
        raise InvalidInput("code: the code's contents cannot be read") from exc
    if payload.m != municipality:
        raise InvalidInput("code: this code belongs to another municipality")
    expires_at = datetime.fromtimestamp(payload.x, UTC) if payload.x is not None else None
    if expires_at is not None and expires_at <= now:
        raise InvalidInput(
            f"code: this sale's code expired at {expires_at.isoformat()}; ask the shop for a new one"
        )
    return PaymentCode(
        municipality=payload.m,
        merchant_id=merchant_id,
        currency=payload.c,
        amount=payload.a,
        expires_at=expires_at,
        sale_id=sale_id,
    )


ImageFormat = Literal["png", "svg"]
MEDIA_TYPES: dict[str, str] = {"png": "image/png", "svg": "image/svg+xml"}


def qr_image(text: str, image_format: ImageFormat) -> bytes:
    """The QR code of ``text`` as a PNG or SVG image, made here (nothing is fetched)."""
    qr = segno.make(text, error="m", micro=False)
    buffer = io.BytesIO()
    if image_format == "png":
        qr.save(buffer, kind="png", scale=6, border=4)
    else:
        qr.save(buffer, kind="svg", scale=6, border=4, xmldecl=False)
    return buffer.getvalue()
