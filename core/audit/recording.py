"""``record(session, ...)``: one call for the core and plugins to put an event in the audit log.

The event is written in the caller's transaction, with the session's next flush (at the latest its commit, or
the release of the savepoint it was recorded in): committed with the change it describes, or rolled back with
it. All the events of one flush go in one statement, written through the driver: no ORM object, no SQL
compilation (that statement is most of what auditing costs a write). Recording touches no shared row (no
counter, no chain head): it never makes two unrelated writes wait for each other. The sealer chains events after
the commit (:mod:`core.audit.sealing`).

No personal data is copied into the log. The actor and the target are references (ids, slugs, names of
things); the payload should be references too. Payload keys named in ``personal`` are replaced by a keyed hash
(:func:`core.audit.macs.pseudonym`): equal values stay linkable within the municipality without being revealed.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC
from typing import TYPE_CHECKING, Any

import msgspec
from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

from core.audit.keys import keys_for
from core.audit.macs import canonical, event_mac, pseudonym
from core.db.base import utcnow
from core.db.session import PLATFORM_KEY, bound_municipality
from core.exceptions import CrossTenantAccess, InvalidInput

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from core.identity.principal import Principal

PENDING_KEY = "tsunagu.audit.pending"
"""``session.info`` key of the events recorded and not written yet: ``(transaction, row)`` pairs."""
MAX_PAYLOAD_BYTES = 4096
"""The canonical JSON of a payload may be at most this long: references, not documents."""

ACTOR_PATTERN = re.compile(
    r"cli|system|anonymous"
    r"|(account|api_key):[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    r"|(job|plugin):[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*"
)
ACTION_PATTERN = re.compile(r"[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*")
TARGET_TYPE_PATTERN = re.compile(r"[a-z][a-z0-9_]*")
MAX_TARGET_ID = 200


def actor_for(principal: Principal) -> str:
    """The actor reference of a request's caller: ``account:<uuid>``, ``api_key:<uuid>`` or ``anonymous``."""
    if principal.account_id is not None:
        return f"account:{principal.account_id}"
    if principal.api_key_id is not None:
        return f"api_key:{principal.api_key_id}"
    return "anonymous"


def record(
    session: AsyncSession | Session,
    *,
    actor: str,
    action: str,
    target_type: str,
    target_id: str | int | uuid.UUID,
    payload: Mapping[str, Any] | None = None,
    personal: Iterable[str] = (),
    municipality_id: int | None = None,
) -> uuid.UUID:
    """Record an audit event in ``session``'s transaction; returns its id. Synchronous: the event is written
    with the session's next flush or commit (see the module docstring).

    :param session: the caller's session. Bound to a municipality (the usual case), the event is that
        municipality's. A platform session (cross-municipality work) must name ``municipality_id``.
    :param actor: who: ``account:<uuid>``, ``api_key:<uuid>``, ``job:<name>``, ``plugin:<name>``, ``cli``,
        ``system`` or ``anonymous`` (see :func:`actor_for`).
    :param action: ``<plugin>.<verb>``: ``core.plugin_enabled``, ``booking.reservation_cancelled``.
    :param target_type: the kind of object changed (``plugin``, ``reservation``), and ``target_id`` its id.
    :param payload: a small JSON object of references (at most 4 KiB encoded). UUIDs and datetimes become
        strings.
    :param personal: payload keys whose values are personal data; each is replaced by ``hmac:<32 hex>``, a keyed
        hash. A dotted key (``applicant.email``) names a key inside a nested object.
    :raises InvalidInput: a malformed actor, action or target, or a payload that is not a small JSON object.
    :raises CrossTenantAccess: ``municipality_id`` differs from the session's municipality, or a platform
        session without it, or an unbound session.
    """
    municipality = _municipality(session, municipality_id)
    _check(actor, action, target_type)
    target = str(target_id)
    if not target or len(target) > MAX_TARGET_ID or not target.isprintable():
        raise InvalidInput(
            f"audit target_id must be 1 to {MAX_TARGET_ID} printable characters, got {target[:80]!r}"
        )
    keys = keys_for(session)
    body = _payload(payload, personal, keys.pseudonym_key, municipality)
    row = {
        "municipality_id": municipality,
        "id": uuid.uuid4(),
        "recorded_at": utcnow(),
        "actor": actor,
        "action": action,
        "target_type": target_type,
        "target_id": target,
        "payload": body,
    }
    row["mac"] = event_mac(keys.mac_key, **row)
    sync = getattr(session, "sync_session", session)
    sync.info.setdefault(PENDING_KEY, []).append(
        (sync.get_nested_transaction() or sync.get_transaction(), row)
    )
    keys.recorded = True
    return row["id"]


def pending(session: AsyncSession | Session) -> list[dict[str, Any]]:
    """The events recorded in ``session`` and not written yet (they are written with its next flush)."""
    return [row for _, row in getattr(session, "sync_session", session).info.get(PENDING_KEY, ())]


def write_pending(session: Session) -> int:
    """Write the session's recorded events now, in one statement; how many. Called on every flush and commit
    (also of a savepoint); call it yourself (through :func:`flush_events`) to read them back before then."""
    rows = [row for _, row in session.info.pop(PENDING_KEY, ())]
    if rows:
        connection = session.connection()
        sql, params = _driver_insert(connection.dialect.name, rows)
        connection.exec_driver_sql(sql, params if len(params) > 1 else params[0])
    return len(rows)


_COLUMNS = "municipality_id, id, recorded_at, actor, action, target_type, target_id, payload, mac"


def _driver_insert(dialect: str, rows: list[dict[str, Any]]) -> tuple[str, list[tuple[Any, ...]]]:
    """The INSERT and its parameters in the driver's own terms, stored exactly as SQLAlchemy's types would
    store them (``tests/integration/test_audit_*`` read every event back through them and recompute its MAC).

    Why not ``insert(AuditEvent)``: the extra statement is nearly all that auditing costs a write, and skipping
    SQL compilation and per-type processing here makes it a fifth cheaper (``docs/performance.md``)."""
    if dialect == "postgresql":  # asyncpg: native uuid and timestamptz; SQLAlchemy's json codec takes text
        placeholders = ", ".join(f"${n}" for n in range(1, 10))
        params = [
            (r["municipality_id"], r["id"], r["recorded_at"], r["actor"], r["action"], r["target_type"],
             r["target_id"], msgspec.json.encode(r["payload"]).decode(), r["mac"])
            for r in rows
        ]  # fmt: skip
    else:  # SQLite: Uuid as 32 hex digits, DateTime as UTC "YYYY-MM-DD HH:MM:SS.ffffff", JSON as text
        placeholders = ", ".join("?" * 9)
        params = [
            (r["municipality_id"], r["id"].hex, r["recorded_at"].astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f"),
             r["actor"], r["action"], r["target_type"], r["target_id"], msgspec.json.encode(r["payload"]).decode(),
             r["mac"])
            for r in rows
        ]  # fmt: skip
    return f"INSERT INTO audit_events ({_COLUMNS}) VALUES ({placeholders})", params


async def flush_events(session: AsyncSession) -> None:
    """Write the events recorded in ``session`` so far (an ORM ``flush()`` of a clean session writes nothing)."""
    await session.run_sync(write_pending)


@event.listens_for(Session, "before_flush")
def _write_on_flush(session: Session, _context: Any, _instances: Any) -> None:
    write_pending(session)


@event.listens_for(Session, "before_commit")
def _write_on_commit(session: Session) -> None:
    write_pending(session)


@event.listens_for(Session, "after_soft_rollback")
def _forget_on_rollback(session: Session, previous: SessionTransaction) -> None:
    """Events recorded inside a transaction (or savepoint) that rolled back are gone with it."""
    kept = [(t, row) for t, row in session.info.get(PENDING_KEY, ()) if not _within(t, previous)]
    if kept:
        session.info[PENDING_KEY] = kept
    else:
        session.info.pop(PENDING_KEY, None)


def _within(transaction: SessionTransaction | None, ancestor: SessionTransaction) -> bool:
    if transaction is None:  # recorded before the session began: part of the outermost transaction
        return ancestor.parent is None
    while transaction is not None:
        if transaction is ancestor:
            return True
        transaction = transaction.parent
    return False


def _municipality(session: Any, municipality_id: int | None) -> int:
    bound = bound_municipality(session)
    if bound is not None:
        if municipality_id is not None and municipality_id != bound:
            raise CrossTenantAccess(
                f"an audit event for municipality {municipality_id} cannot be recorded by a session bound to "
                f"municipality {bound}"
            )
        return bound
    if not session.info.get(PLATFORM_KEY):
        raise CrossTenantAccess("audit events are recorded in a session bound to a municipality")
    if not isinstance(municipality_id, int) or isinstance(municipality_id, bool):
        raise CrossTenantAccess("an audit event recorded in a platform session must name its municipality_id")
    return municipality_id


def _check(actor: str, action: str, target_type: str) -> None:
    if not isinstance(actor, str) or not ACTOR_PATTERN.fullmatch(actor):
        raise InvalidInput(
            "audit actor must be a reference (account:<uuid>, api_key:<uuid>, job:<name>, plugin:<name>, cli, "
            f"system or anonymous), got {str(actor)[:80]!r}"
        )
    if not isinstance(action, str) or len(action) > 80 or not ACTION_PATTERN.fullmatch(action):
        raise InvalidInput(f"audit action must look like <plugin>.<verb>, got {str(action)[:80]!r}")
    if (
        not isinstance(target_type, str)
        or len(target_type) > 40
        or not TARGET_TYPE_PATTERN.fullmatch(target_type)
    ):
        raise InvalidInput(f"audit target_type must be a lower-case word, got {str(target_type)[:80]!r}")


def _payload(
    payload: Mapping[str, Any] | None, personal: Iterable[str], key: bytes, municipality: int
) -> dict[str, Any]:
    if payload is None:
        payload = {}
    if not isinstance(payload, Mapping):
        raise InvalidInput(f"audit payload must be a JSON object, got {type(payload).__name__}")
    try:  # exactly the value the database will give back: JSON types only, str keys
        body: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(dict(payload)))
    except (TypeError, msgspec.EncodeError) as exc:
        raise InvalidInput(f"audit payload must be JSON-encodable: {exc}") from exc
    for path in personal:
        _pseudonymise(body, path.split("."), key, municipality)
    size = len(canonical(body))
    if size > MAX_PAYLOAD_BYTES:
        raise InvalidInput(
            f"audit payload is {size} bytes encoded, more than {MAX_PAYLOAD_BYTES}: record references, not documents"
        )
    return body


def _pseudonymise(node: Any, path: list[str], key: bytes, municipality: int) -> None:
    head, *rest = path
    if not isinstance(node, dict) or head not in node:
        return
    if rest:
        _pseudonymise(node[head], rest, key, municipality)
    elif node[head] is not None:
        node[head] = pseudonym(key, municipality, node[head])
