"""What every health service needs to know about where and when it runs, in one value.

Routes, commands and jobs build it from the platform (:func:`context_for`); tests build it with a fixed "now".
It carries the platform too, because redemption asks the ``award_for_reference`` hook of the municipality.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import msgspec

from core.db.base import utcnow
from plugins.health.config import HealthSettings

if TYPE_CHECKING:
    from core.platform import Platform
    from core.tenancy.registry import Municipality


class HealthContext(msgspec.Struct, kw_only=True, frozen=True):
    settings: HealthSettings
    platform: Any
    municipality: Any
    code_key: bytes
    """MAC key of the check-in QR tokens (derived from the platform secret)."""
    now: datetime | None = None
    """Fixed "now" for tests; ``None``: the clock."""

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.municipality.timezone)

    def current(self) -> datetime:
        return self.now or utcnow()

    def local_date(self, moment: datetime) -> date:
        return moment.astimezone(self.zone).date()


def fiscal_year(day: date) -> int:
    """年度: April to March; 31 March 2027 is still in 2026."""
    return day.year if day.month >= 4 else day.year - 1


def expires_on(year: int) -> date:
    """Points earned in fiscal year ``year`` expire at the end of 31 March after it."""
    return date(year + 1, 3, 31)


def context_for(
    platform: Platform, municipality: Municipality, *, now: datetime | None = None
) -> HealthContext:
    """The context of the health plugin enabled in ``municipality``. :raises NotFound: when it is not."""
    from plugins.health.services._tokens import token_key

    return HealthContext(
        settings=platform.plugin_settings(municipality, "health"),
        platform=platform,
        municipality=municipality,
        code_key=token_key(platform.settings),
        now=now,
    )
