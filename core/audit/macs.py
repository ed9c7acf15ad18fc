"""What is MACed, exactly: the canonical encoding of an event, and the chain link.

An event's MAC is ``HMAC-SHA256(mac_key, canonical([1, municipality_id, id, recorded_at, actor, action,
target_type, target_id, payload]))``, where ``canonical`` is JSON with sorted keys, no spaces, UTF-8 (:func:`canonical`), and
``recorded_at`` is ISO 8601 in UTC to the microsecond. The payload is stored as JSON and read back as the same
value, so the MAC recomputes from the row alone.

A chain entry's MAC is ``HMAC-SHA256(mac_key, "chain" | municipality_id | seq | previous chain MAC | event id |
event MAC)`` (integers as 8 bytes big-endian, MACs as their 32 raw bytes). The first entry of a municipality
chains from 32 zero bytes; after a retention purge, from the last purged entry's chain MAC (the anchor).
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec

MAC_VERSION = 1
GENESIS = "0" * 64
"""The "previous chain MAC" of a municipality's first entry (hex)."""


def canonical(value: Any) -> bytes:
    """JSON with sorted keys and no whitespace, UTF-8: the same bytes for the same value, however it was built
    (msgspec's encoder: about ten times faster than the standard library's, and as deterministic)."""
    return msgspec.json.encode(value, order="sorted")


def timestamp(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("naive datetime in an audit event")
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def event_mac(
    key: bytes,
    *,
    municipality_id: int,
    id: uuid.UUID,
    recorded_at: datetime,
    actor: str,
    action: str,
    target_type: str,
    target_id: str,
    payload: dict[str, Any],
) -> str:
    message = canonical(
        [
            MAC_VERSION,
            municipality_id,
            str(id),
            timestamp(recorded_at),
            actor,
            action,
            target_type,
            target_id,
            payload,
        ]
    )
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def mac_of(key: bytes, event: Any) -> str:
    """The MAC an event row (anything with the event's attributes) should carry; ``""`` (which matches no
    MAC) for a row that cannot even be encoded, such as one whose payload was replaced by something odd."""
    try:
        return event_mac(
            key,
            municipality_id=event.municipality_id,
            id=event.id,
            recorded_at=event.recorded_at,
            actor=event.actor,
            action=event.action,
            target_type=event.target_type,
            target_id=event.target_id,
            payload=event.payload,
        )
    except (msgspec.EncodeError, TypeError, ValueError, OverflowError):
        return ""


def chain_mac(
    key: bytes, *, municipality_id: int, seq: int, previous: str, event_id: uuid.UUID, event_mac: str
) -> str:
    message = b"".join(
        (
            b"chain",
            municipality_id.to_bytes(8, "big", signed=True),
            seq.to_bytes(8, "big", signed=True),
            bytes.fromhex(previous),
            event_id.bytes,
            bytes.fromhex(event_mac),
        )
    )
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def pseudonym(key: bytes, municipality_id: int, value: Any) -> str:
    """A keyed hash of a personal value: equal values in one municipality get equal pseudonyms (so events stay
    linkable), and nobody without the key can test a guess. Municipalities get unrelated pseudonyms."""
    digest = hmac.new(key, canonical([municipality_id, value]), hashlib.sha256).hexdigest()
    return f"hmac:{digest[:32]}"


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
