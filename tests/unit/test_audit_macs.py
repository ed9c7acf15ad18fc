"""The audit log's cryptography: key derivation, the canonical encoding, and what each MAC covers.

A MAC that does not change when a field changes would let that field be edited undetected; one that depends on
how a payload was built (key order, tuples against lists) would make honest entries fail verification.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.audit.keys import AuditKeys, hkdf_sha256
from core.audit.macs import GENESIS, canonical, chain_mac, event_mac, pseudonym

KEY = b"k" * 32
EVENT = {
    "municipality_id": 3,
    "id": uuid.UUID("0b9c6a43-6f1e-4a55-9d7e-2f5c1c3e8a10"),
    "recorded_at": datetime(2026, 4, 1, 0, 0, 0, 123456, tzinfo=UTC),
    "actor": "cli",
    "action": "core.plugin_enabled",
    "target_type": "plugin",
    "target_id": "notices",
    "payload": {"keys": ["page_size"], "n": 1},
}


def test_hkdf_matches_rfc_5869() -> None:
    # RFC 5869, A.1 and A.3 (SHA-256).
    okm = hkdf_sha256(
        bytes.fromhex("0b" * 22),
        bytes.fromhex("f0f1f2f3f4f5f6f7f8f9"),
        42,
        bytes.fromhex("000102030405060708090a0b0c"),
    )
    assert okm.hex() == "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
    okm = hkdf_sha256(bytes.fromhex("0b" * 22), b"", 42)
    assert okm.hex() == "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"


def test_the_two_keys_differ_from_each_other_and_from_the_secret_and_are_derived_once() -> None:
    calls = []

    def secret() -> bytes:
        calls.append(1)
        return b"s" * 48

    keys = AuditKeys(secret)
    assert calls == []  # nothing read until a key is needed
    assert len({keys.mac_key, keys.pseudonym_key, b"s" * 48}) == 3
    assert keys.mac_key == AuditKeys.from_secret(b"s" * 48).mac_key
    assert keys.mac_key != AuditKeys.from_secret(b"t" * 48).mac_key
    assert calls == [1]
    assert "s" * 10 not in repr(keys)


@pytest.mark.parametrize(
    "field, value",
    [
        ("municipality_id", 4),
        ("id", uuid.UUID("0b9c6a43-6f1e-4a55-9d7e-2f5c1c3e8a11")),
        ("recorded_at", EVENT["recorded_at"] + timedelta(microseconds=1)),
        ("actor", "system"),
        ("action", "core.plugin_disabled"),
        ("target_type", "plugins"),
        ("target_id", "notice"),
        ("payload", {"keys": ["page_size"], "n": 2}),
        ("payload", {"keys": ["page_size"], "n": 1, "extra": None}),
    ],
)
def test_every_field_is_covered_by_the_event_mac(field: str, value: object) -> None:
    assert event_mac(KEY, **{**EVENT, field: value}) != event_mac(KEY, **EVENT)  # type: ignore[arg-type]


def test_the_event_mac_depends_on_the_key_and_not_on_how_the_value_was_built() -> None:
    assert event_mac(b"x" * 32, **EVENT) != event_mac(KEY, **EVENT)  # type: ignore[arg-type]
    rebuilt = {**EVENT, "payload": {"n": 1, "keys": ("page_size",)}}
    assert event_mac(KEY, **rebuilt) == event_mac(KEY, **EVENT)  # type: ignore[arg-type]
    same_instant = {**EVENT, "recorded_at": EVENT["recorded_at"].astimezone(timezone(timedelta(hours=9)))}  # type: ignore[union-attr]
    assert event_mac(KEY, **same_instant) == event_mac(KEY, **EVENT)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        event_mac(KEY, **{**EVENT, "recorded_at": datetime(2026, 4, 1)})  # type: ignore[arg-type]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@given(st.dictionaries(st.text(max_size=8), json_values, max_size=6))
def test_canonical_encoding_ignores_key_order_and_round_trips(payload: dict[str, object]) -> None:
    import json

    reordered = dict(reversed(list(payload.items())))
    assert canonical(reordered) == canonical(payload)
    assert canonical(json.loads(json.dumps(payload))) == canonical(payload)  # what the database gives back


def test_chain_mac_covers_position_predecessor_event_and_municipality() -> None:
    event_id, mac = uuid.uuid4(), "ab" * 32
    base = {"municipality_id": 1, "seq": 5, "previous": GENESIS, "event_id": event_id, "event_mac": mac}
    reference = chain_mac(KEY, **base)  # type: ignore[arg-type]
    for field, value in [
        ("municipality_id", 2),
        ("seq", 6),
        ("previous", "cd" * 32),
        ("event_id", uuid.uuid4()),
        ("event_mac", "ac" * 32),
    ]:
        assert chain_mac(KEY, **{**base, field: value}) != reference, field  # type: ignore[arg-type]


def test_pseudonyms_link_equal_values_within_a_municipality_only() -> None:
    assert pseudonym(KEY, 1, "taro@example.jp") == pseudonym(KEY, 1, "taro@example.jp")
    assert pseudonym(KEY, 1, "taro@example.jp") != pseudonym(KEY, 1, "hanako@example.jp")
    assert pseudonym(KEY, 1, "taro@example.jp") != pseudonym(KEY, 2, "taro@example.jp")
    assert pseudonym(KEY, 1, "taro@example.jp") != pseudonym(b"x" * 32, 1, "taro@example.jp")
    assert "taro" not in pseudonym(KEY, 1, "taro@example.jp")
    assert pseudonym(KEY, 1, "x").startswith("hmac:") and len(pseudonym(KEY, 1, "x")) == 5 + 32
