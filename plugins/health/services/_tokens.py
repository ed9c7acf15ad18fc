"""The check-in QR token and short code of a person.

The QR code carries ``TSGH1.<slug>.<person hex>.<mac>``: an HMAC-SHA256 (first 16 bytes, base64url) under a key
derived from ``TSUNAGU_SECRET_KEY``, so a card cannot be made up or moved to another municipality. Where there
is no camera, staff type the person's short code: 8 characters from an alphabet without look-alikes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import secrets
import uuid
from functools import lru_cache

import segno

from core.audit.keys import hkdf_sha256
from core.exceptions import InvalidInput
from core.settings import Settings, secret_key_bytes

PREFIX = "TSGH1"
CODE_ALPHABET = "ACDEFGHJKLMNPQRTUVWXY34679"
CODE_LENGTH = 8
_INFO = b"tsunagu health check-in tokens v1"


def token_key(settings: Settings) -> bytes:
    return _derive(secret_key_bytes(settings))


@lru_cache(maxsize=8)
def _derive(secret: bytes) -> bytes:
    return hkdf_sha256(secret, _INFO)


def _mac(key: bytes, signed: str) -> str:
    digest = hmac.new(key, signed.encode("ascii"), hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def make_token(key: bytes, slug: str, person_id: uuid.UUID) -> str:
    signed = f"{PREFIX}.{slug}.{person_id.hex}"
    return f"{signed}.{_mac(key, signed)}"


def read_token(key: bytes, slug: str, text: str) -> uuid.UUID:
    """The person a scanned token names. :raises InvalidInput: not ours, altered, or another town's."""
    parts = text.strip().split(".")
    if len(text) > 200 or len(parts) != 4 or parts[0] != PREFIX:
        raise InvalidInput("token: not a check-in card of this platform")
    signed = ".".join(parts[:3])
    if not hmac.compare_digest(_mac(key, signed), parts[3]):
        raise InvalidInput("token: the signature does not match; the card was altered or is not genuine")
    if parts[1] != slug:
        raise InvalidInput("token: this card belongs to another municipality")
    try:
        return uuid.UUID(hex=parts[2])
    except ValueError as exc:
        raise InvalidInput("token: the card's contents cannot be read") from exc


def new_short_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalise_code(text: str) -> str:
    """What staff typed, as stored: upper case, without spaces or hyphens."""
    return text.strip().upper().replace("-", "").replace(" ", "")


def qr_svg(text: str) -> bytes:
    """The QR code of ``text`` as an SVG image, made here (nothing is fetched)."""
    buffer = io.BytesIO()
    segno.make(text, error="m", micro=False).save(buffer, kind="svg", scale=6, border=4, xmldecl=False)
    return buffer.getvalue()
