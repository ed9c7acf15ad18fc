"""Wire types of the opinion box."""

from __future__ import annotations

from datetime import datetime

import msgspec


class OpinionSubmit(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    topic: str
    body: str


class OpinionReceipt(msgspec.Struct, kw_only=True, frozen=True):
    """What the sender gets back, and what anyone holding the receipt may see (never the text)."""

    receipt: str
    status: str
    received_at: datetime
    reply_due: datetime


class OpinionRecord(msgspec.Struct, kw_only=True, frozen=True):
    """An opinion as staff see it, text included."""

    receipt: str
    topic: str
    body: str
    status: str
    received_at: datetime
    reply_due: datetime
    answered_at: datetime | None = None
