"""``record(session, ...)``: one call for the core and plugins to put an event in the audit log.

The event is added to the caller's session, so it is written in the caller's transaction: committed with the
change it describes, or rolled back with it. It touches no shared row (no counter, no chain head): recording
never makes two unrelated writes wait for each other. The sealer chains it after the commit
(:mod:`core.audit.sealing`).

No personal data is copied into the log. The actor and the target are references (ids, slugs, names of
things); the payload should be references too. Payload keys named in ``personal`` are replaced by a keyed hash
(:func:`core.audit.macs.pseudonym`): equal values stay linkable within the municipality without being revealed.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import msgspec

from core.audit.keys import keys_for
from core.audit.macs import canonical, event_mac, pseudonym
from core.audit.models import AuditEvent
from core.db.base import utcnow
from core.db.session import PLATFORM_KEY, bound_municipality
from core.exceptions import CrossTenantAccess, InvalidInput

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession
    from sqlalchemy.orm import Session

    from core.identity.principal import Principal

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
    """Add an audit event to ``session``'s transaction; returns its id.

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
    event = AuditEvent(
        municipality_id=municipality,
        id=uuid.uuid4(),
        recorded_at=utcnow(),
        actor=actor,
        action=action,
        target_type=target_type,
        target_id=target,
        payload=body,
    )
    event.mac = event_mac(
        keys.mac_key,
        municipality_id=municipality,
        id=event.id,
        recorded_at=event.recorded_at,
        actor=actor,
        action=action,
        target_type=target_type,
        target_id=target,
        payload=body,
    )
    session.add(event)
    keys.recorded = True
    return event.id


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
