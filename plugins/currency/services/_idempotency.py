"""Idempotency keys: a value-moving request retried with the same key moves value once.

The key is claimed (inserted) in the same transaction as the movement, before it: a duplicate arriving while the
first is under way waits on the key's row, then finds the first answer stored. A request that fails rolls its
claim back with everything else, so a retry after a failure runs again. Keys are kept for 30 days.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

import msgspec
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.db import bound_municipality, utcnow
from core.exceptions import InvalidInput
from plugins.currency.models import IdempotencyKey
from plugins.currency.services._sql import insert_if_absent

MAX_KEY = 200


class Replay(msgspec.Struct, kw_only=True, frozen=True):
    status_code: int
    body: bytes


def check_key(key: str | None) -> str:
    """:raises InvalidInput: no key, or not 1 to 200 visible ASCII characters."""
    if key is None or not key.strip():
        raise InvalidInput("Idempotency-Key: this request moves value and needs an Idempotency-Key header")
    if len(key) > MAX_KEY or not all("!" <= c <= "~" for c in key):
        raise InvalidInput(
            f"Idempotency-Key: must be 1 to {MAX_KEY} visible ASCII characters (a UUID will do)"
        )
    return key


def request_hash(method: str, path: str, body: Any) -> str:
    canonical = msgspec.json.encode([method, path, msgspec.to_builtins(body)], order="sorted")
    return hashlib.sha256(canonical).hexdigest()


async def claim(session: AsyncSession, *, caller: str, key: str, fingerprint: str) -> Replay | None:
    """Take the key for this request. ``None``: ours, go ahead (and :func:`remember` the answer); else the first
    answer to give again.

    :raises InvalidInput: the key was used before for a different request.
    """
    claimed = await insert_if_absent(
        session,
        IdempotencyKey,
        {
            "municipality_id": bound_municipality(session),
            "caller": caller,
            "key": key,
            "request_hash": fingerprint,
            "created_at": utcnow(),
        },
    )
    if claimed:
        return None
    first = await session.scalar(
        select(IdempotencyKey).where(IdempotencyKey.caller == caller, IdempotencyKey.key == key)
    )
    assert first is not None and first.response is not None and first.status_code is not None
    if first.request_hash != fingerprint:
        raise InvalidInput("Idempotency-Key: this key was used for a different request; use a new key")
    return Replay(status_code=first.status_code, body=first.response)


async def remember(session: AsyncSession, *, caller: str, key: str, status_code: int, body: bytes) -> None:
    await session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.caller == caller, IdempotencyKey.key == key)
        .values(status_code=status_code, response=body)
        .execution_options(synchronize_session=False)
    )


KEEP_KEYS = timedelta(days=30)
"""How long a first answer is kept for retries; older keys are forgotten by the daily job."""


async def forget_old_keys(session: AsyncSession, *, now: datetime) -> int:
    """Delete idempotency keys older than :data:`KEEP_KEYS` (answers, not money: nothing of the ledger)."""
    result = await session.execute(
        delete(IdempotencyKey)
        .where(IdempotencyKey.created_at < now - KEEP_KEYS)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
