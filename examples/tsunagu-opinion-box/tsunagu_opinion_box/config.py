"""Settings of the opinion box, per municipality (``[plugins.opinion_box]``)."""

from __future__ import annotations

import msgspec


class OpinionBoxSettings(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    reply_days: int = 14
    """Days within which the town promises an answer (1 to 90); shown to the sender."""
    max_length: int = 4000
    """Longest opinion accepted, in characters (100 to 20000)."""

    def __post_init__(self) -> None:
        if not 1 <= self.reply_days <= 90:
            raise ValueError(f"reply_days must be between 1 and 90, got {self.reply_days}")
        if not 100 <= self.max_length <= 20_000:
            raise ValueError(f"max_length must be between 100 and 20000, got {self.max_length}")
