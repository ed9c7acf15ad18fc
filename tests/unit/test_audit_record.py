"""``record()``: what it accepts, what it refuses, and that personal values never reach the row."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from core.audit import AuditEvent, record
from core.audit.keys import AuditKeys, bind_keys
from core.audit.macs import mac_of, pseudonym
from core.audit.recording import MAX_PAYLOAD_BYTES, actor_for, pending
from core.db.session import MUNICIPALITY_KEY, PLATFORM_KEY
from core.exceptions import CrossTenantAccess, ImproperlyConfigured, InvalidInput
from core.identity.principal import Principal

KEYS = AuditKeys.from_secret(b"unit-test-secret-" * 3)
ENGINE = create_engine("sqlite://")
bind_keys(ENGINE, KEYS)


@pytest.fixture
def session() -> Iterator[Session]:
    with Session(ENGINE, info={MUNICIPALITY_KEY: 7}) as session:
        yield session


def added(session: Session) -> AuditEvent:
    """The one event recorded in ``session`` (not written: no database here), as the row it will be."""
    (row,) = pending(session)
    return AuditEvent(**row)


def test_an_event_is_added_to_the_callers_session_with_a_mac_over_its_content(session: Session) -> None:
    event_id = record(
        session,
        actor="cli",
        action="core.plugin_enabled",
        target_type="plugin",
        target_id="notices",
        payload={"at": datetime(2026, 4, 1, tzinfo=UTC), "ref": uuid.UUID(int=5)},
    )
    event = added(session)
    assert event.id == event_id
    assert event.municipality_id == 7
    assert event.recorded_at.tzinfo is not None
    assert event.payload == {
        "at": "2026-04-01T00:00:00Z",
        "ref": str(uuid.UUID(int=5)),
    }  # as JSON gives it back
    assert event.mac == mac_of(KEYS.mac_key, event)


def test_personal_values_are_replaced_by_keyed_hashes_that_stay_linkable(session: Session) -> None:
    record(
        session,
        actor="account:0b9c6a43-6f1e-4a55-9d7e-2f5c1c3e8a10",
        action="booking.reserved",
        target_type="reservation",
        target_id=uuid.UUID(int=1),
        payload={
            "email": "taro@example.jp",
            "applicant": {"phone": "087-000-0000", "count": 2},
            "unit": "room-1",
        },
        personal=("email", "applicant.phone", "absent", "unit.deeper"),
    )
    event = added(session)
    text = repr(event.payload)
    assert "taro" not in text and "087" not in text
    assert event.payload["email"] == pseudonym(KEYS.pseudonym_key, 7, "taro@example.jp")
    assert event.payload["applicant"] == {
        "phone": pseudonym(KEYS.pseudonym_key, 7, "087-000-0000"),
        "count": 2,
    }
    assert event.payload["unit"] == "room-1"
    assert event.target_id == str(uuid.UUID(int=1))


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"actor": "taro@example.jp"}, "actor must be a reference"),
        ({"actor": "account:not-a-uuid"}, "actor must be a reference"),
        ({"action": "enabled"}, "<plugin>.<verb>"),
        ({"action": "Core.Enabled"}, "<plugin>.<verb>"),
        ({"target_type": "Plugin Row"}, "target_type"),
        ({"target_id": ""}, "target_id"),
        ({"target_id": "x" * 201}, "target_id"),
        ({"payload": ["not", "an", "object"]}, "JSON object"),
        ({"payload": {"blob": object()}}, "JSON-encodable"),
        ({"payload": {"text": "x" * MAX_PAYLOAD_BYTES}}, "references, not documents"),
    ],
)
def test_malformed_events_are_refused_and_nothing_is_added(
    session: Session, changes: dict[str, object], message: str
) -> None:
    arguments: dict[str, object] = {
        "actor": "cli",
        "action": "core.plugin_enabled",
        "target_type": "plugin",
        "target_id": "notices",
        **changes,
    }
    with pytest.raises(InvalidInput, match=message):
        record(session, **arguments)  # type: ignore[arg-type]
    assert not pending(session)


def test_a_payload_just_under_the_limit_is_accepted(session: Session) -> None:
    record(
        session, actor="system", action="core.x", target_type="t", target_id="1", payload={"t": "x" * 4000}
    )
    assert added(session)


def test_the_municipality_comes_from_the_session() -> None:
    with Session(ENGINE, info={MUNICIPALITY_KEY: 7}) as session:
        with pytest.raises(CrossTenantAccess):
            record(session, actor="cli", action="core.x", target_type="t", target_id="1", municipality_id=8)
        record(session, actor="cli", action="core.x", target_type="t", target_id="1", municipality_id=7)
    with Session(ENGINE, info={PLATFORM_KEY: True}) as session:
        with pytest.raises(CrossTenantAccess, match="must name its municipality_id"):
            record(session, actor="cli", action="core.x", target_type="t", target_id="1")
        record(session, actor="cli", action="core.x", target_type="t", target_id="1", municipality_id=8)
        assert added(session).municipality_id == 8
    with Session(ENGINE) as session:
        with pytest.raises(CrossTenantAccess):
            record(session, actor="cli", action="core.x", target_type="t", target_id="1", municipality_id=8)


def test_a_session_on_an_engine_without_keys_cannot_record() -> None:
    with Session(create_engine("sqlite://"), info={MUNICIPALITY_KEY: 7}) as session:
        with pytest.raises(ImproperlyConfigured, match="no audit keys"):
            record(session, actor="cli", action="core.x", target_type="t", target_id="1")


def test_actor_for_principals() -> None:
    account, key = uuid.uuid4(), uuid.uuid4()
    assert actor_for(Principal(kind="session", account_id=account)) == f"account:{account}"
    assert actor_for(Principal(kind="api_key", api_key_id=key)) == f"api_key:{key}"
    assert actor_for(Principal()) == "anonymous"
