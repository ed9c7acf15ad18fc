"""Settings of the booking plugin, per municipality (``[plugins.booking]`` in its manifest).

Each rule names the field it breaks, so a manifest mistake reads as ``plugins.booking.window_days_other: ...``.
"""

from __future__ import annotations

import re

import msgspec

_EXEMPTION_CODE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


class BookingSettings(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    window_days_resident: int = 60
    """How far ahead a resident of the town may book (days; 2 months by default)."""
    window_days_region: int = 45
    """How far ahead a resident of another member municipality of the region may book."""
    window_days_other: int = 30
    """How far ahead anyone else may book."""
    min_notice_hours: int = 24
    """A booking must start at least this many hours after it is made (staff blocks excepted)."""
    max_bookings_per_month: int = 4
    """Active bookings one person may hold per calendar month, across the municipality's facilities."""
    cancel_deadline_days: int = 3
    """Default for facilities without their own: residents may cancel until this many days before the start."""
    exemptions: dict[str, int] = msgspec.field(
        default_factory=lambda: {"disability": 50, "school": 100, "town_event": 100}
    )
    """減免: exemption code -> percent off the fee. A booking claiming one goes to staff review."""
    lottery_max_wishes: int = 3
    """抽選: ranked wishes one applicant may submit per facility and month."""
    lottery_max_wins: int = 1
    """Wishes one applicant may win per facility and month."""
    lottery_confirm_days: int = 7
    """Winners must confirm within this many days of the draw (shown to them; the timer is the workflow's)."""

    def __post_init__(self) -> None:
        for name in ("window_days_resident", "window_days_region", "window_days_other"):
            value = getattr(self, name)
            if not 1 <= value <= 366:
                raise ValueError(f"{name} must be between 1 and 366, got {value}")
        if not 0 <= self.min_notice_hours <= 24 * 60:
            raise ValueError(f"min_notice_hours must be between 0 and 1440, got {self.min_notice_hours}")
        if not 1 <= self.max_bookings_per_month <= 100:
            raise ValueError(
                f"max_bookings_per_month must be between 1 and 100, got {self.max_bookings_per_month}"
            )
        if not 0 <= self.cancel_deadline_days <= 90:
            raise ValueError(
                f"cancel_deadline_days must be between 0 and 90, got {self.cancel_deadline_days}"
            )
        for code, percent in self.exemptions.items():
            if not _EXEMPTION_CODE.match(code):
                raise ValueError(
                    f"exemptions must name codes in lowercase letters, digits or '_', got {code!r}"
                )
            if not 0 < percent <= 100:
                raise ValueError(
                    f"exemptions must give each code a percentage from 1 to 100, got {code} = {percent}"
                )
        if not 1 <= self.lottery_max_wishes <= 10:
            raise ValueError(f"lottery_max_wishes must be between 1 and 10, got {self.lottery_max_wishes}")
        if not 1 <= self.lottery_max_wins <= self.lottery_max_wishes:
            raise ValueError(
                f"lottery_max_wins must be between 1 and lottery_max_wishes ({self.lottery_max_wishes}), "
                f"got {self.lottery_max_wins}"
            )
        if not 1 <= self.lottery_confirm_days <= 30:
            raise ValueError(
                f"lottery_confirm_days must be between 1 and 30, got {self.lottery_confirm_days}"
            )

    def window_days(self, person_class: str) -> int:
        """The booking window of a class of person: ``resident``, ``region`` or ``other``."""
        return {
            "resident": self.window_days_resident,
            "region": self.window_days_region,
        }.get(person_class, self.window_days_other)
