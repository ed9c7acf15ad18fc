"""Settings of the health plugin, per municipality (``[plugins.health]`` in its manifest).

Each rule names the field it breaks, so a manifest mistake reads as ``plugins.health.daily_cap: ...``.
"""

from __future__ import annotations

import re
from typing import Literal

import msgspec

_RULE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


class PointRule(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Points for taking part: one rule pays ``points`` for each attended session of its kind."""

    name: str
    """Identifies the rule in the ledger: a (person, session, rule) is paid once."""
    trigger: Literal["attendance", "checkup"] = "attendance"
    """``attendance``: any event session; ``checkup``: a check-up (健診) session."""
    points: int
    min_age: int | None = None
    """Only people of at least this age (reached in the session's calendar year)."""
    max_age: int | None = None
    """Only people of at most this age."""


class HealthSettings(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    rules: list[PointRule] = msgspec.field(
        default_factory=lambda: [
            PointRule(name="attendance", trigger="attendance", points=10),
            PointRule(name="checkup", trigger="checkup", points=50),
        ]
    )
    """The municipality's point rules; several may pay for one session (an age bonus, say)."""
    daily_cap: int = 30
    """Most points one person earns per day (local date); the rest of an award is not paid."""
    yearly_cap: int = 1000
    """Most points one person earns per fiscal year (April to March)."""
    currency_per_point: int = 1
    """Units of the regional currency paid per point redeemed, where ``currency`` is enabled."""
    min_cell: int = 10
    """Statistics: a cell counting fewer people than this is suppressed (shown as ``null``)."""
    districts: list[str] = msgspec.field(default_factory=list)
    """地区: the districts people may give; empty: any name up to 40 characters."""

    def __post_init__(self) -> None:
        names = [rule.name for rule in self.rules]
        for rule in self.rules:
            if not _RULE_NAME.match(rule.name):
                raise ValueError(
                    f"rules must have names of lowercase letters, digits or '_', got {rule.name!r}"
                )
            if not 1 <= rule.points <= 10_000:
                raise ValueError(f"rules must give {rule.name}.points between 1 and 10000, got {rule.points}")
            low, high = rule.min_age or 0, rule.max_age if rule.max_age is not None else 150
            if not 0 <= low <= high <= 150:
                raise ValueError(f"rules must give {rule.name} ages with 0 <= min_age <= max_age <= 150")
        if len(set(names)) != len(names):
            raise ValueError("rules must each have a name of their own")
        if not 1 <= self.daily_cap <= self.yearly_cap:
            raise ValueError(
                f"daily_cap must be at least 1 and at most yearly_cap ({self.yearly_cap}), got {self.daily_cap}"
            )
        if self.yearly_cap > 1_000_000:
            raise ValueError(f"yearly_cap must be at most 1000000, got {self.yearly_cap}")
        if not 1 <= self.currency_per_point <= 1000:
            raise ValueError(f"currency_per_point must be between 1 and 1000, got {self.currency_per_point}")
        if not 2 <= self.min_cell <= 1000:
            raise ValueError(f"min_cell must be between 2 and 1000, got {self.min_cell}")
        for district in self.districts:
            if not 1 <= len(district) <= 40:
                raise ValueError(f"districts must be names of 1 to 40 characters, got {district!r}")
