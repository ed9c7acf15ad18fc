"""Wake this process's relays as soon as a transaction that wrote to the outbox commits.

Only an optimisation: relays also poll, so a message committed by another process is relayed within one poll.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

WROTE_OUTBOX = "tsunagu.outbox_written"

_listeners: dict[int, Callable[[], None]] = {}
_lock = threading.Lock()


def add_listener(callback: Callable[[], None]) -> int:
    """Call ``callback`` (from any thread) after each commit that wrote to the outbox. Returns a handle."""
    with _lock:
        handle = max(_listeners, default=0) + 1
        _listeners[handle] = callback
    return handle


def remove_listener(handle: int) -> None:
    with _lock:
        _listeners.pop(handle, None)


def mark_written(session: Any) -> None:
    session.info[WROTE_OUTBOX] = True


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    if not session.info.pop(WROTE_OUTBOX, False):
        return
    with _lock:
        callbacks = list(_listeners.values())
    for callback in callbacks:
        callback()


@event.listens_for(Session, "after_soft_rollback")
def _after_rollback(session: Session, _previous: Any) -> None:
    session.info.pop(WROTE_OUTBOX, None)
