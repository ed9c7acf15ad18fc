"""What every booking service needs to know about where and when it runs, in one value.

Routes, commands and jobs build it from the platform (:func:`context_for`); tests build it by hand to pin
"now". Nothing in here reads a request.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import msgspec

from core.db.base import utcnow
from plugins.booking.config import BookingSettings

if TYPE_CHECKING:
    from core.platform import Platform
    from core.tenancy.registry import Municipality


class BookingContext(msgspec.Struct, kw_only=True, frozen=True):
    settings: BookingSettings
    municipality_id: int
    code: str
    """The municipality's 全国地方公共団体コード."""
    name: str
    timezone: str
    members: frozenset[int]
    """Ids of every member municipality of the region (for the 'rest of the region' fee and window)."""
    now: datetime | None = None
    """Fixed "now" for tests; ``None``: the clock."""

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def current(self) -> datetime:
        return self.now or utcnow()


def context_for(
    platform: Platform, municipality: Municipality, *, now: datetime | None = None
) -> BookingContext:
    """The context of the booking plugin enabled in ``municipality``. :raises NotFound: when it is not."""
    settings: Any = platform.plugin_settings(municipality, "booking")
    return BookingContext(
        settings=settings,
        municipality_id=municipality.id,
        code=municipality.code,
        name=municipality.name,
        timezone=municipality.timezone,
        members=frozenset(platform.snapshot.by_id),
        now=now,
    )
