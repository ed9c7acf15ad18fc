"""Settings of the currency plugin, per municipality (``[plugins.currency]`` in its manifest).

A municipality runs one or more currencies (a 地域通貨 such as 「みきコイン」, a points scheme); each has its own
accounts, limits and expiry rules. Amounts are whole units (integers): 1 コイン, 1 ポイント.
"""

from __future__ import annotations

import re

import msgspec

CODE_PATTERN = re.compile(r"^[A-Z][A-Z0-9]{1,15}$")
_CATEGORY = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_POSTAL_CODE = re.compile(r"^[0-9]{3}-[0-9]{4}$")
DEFAULT_CATEGORIES = ("food", "retail", "service", "health", "transport", "other")
MAX_AMOUNT = 10_000_000_000
"""No single limit may exceed this: far above any real wallet, far below the 64-bit columns."""


class CurrencyConfig(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """One currency of the municipality and its rules."""

    code: str
    """Upper-case code, 2 to 16 letters or digits (``MIKI``); it names the currency in every API and report."""
    name: str
    """Name residents see (``みきコイン``)."""
    name_en: str = ""
    """English name (``Miki Coin``); the code when empty."""
    max_payment: int = 50_000
    """Largest single payment (1 or more)."""
    max_daily: int = 100_000
    """Most a resident may pay in one calendar day of the municipality's time zone (at least ``max_payment``)."""
    max_balance: int = 200_000
    """Most a resident may hold; an issue or award that would go above it is refused."""
    purchased_expiry_days: int = 180
    """Days purchased value stays usable after it is issued (1 to 3650)."""
    bonus_expiry_days: int = 180
    """Days bonus (premium) value stays usable after it is issued (1 to 3650)."""
    award_expiry_days: int = 365
    """Days awarded value (points from other services) stays usable (1 to 3650)."""
    fee_rate_bp: int = 0
    """Merchant fee on each payment in basis points (0 to 1000, i.e. up to 10 %), rounded down."""
    sale_ttl_seconds: int = 300
    """How long a per-sale QR code can be paid (30 to 3600 seconds)."""

    def __post_init__(self) -> None:
        if not CODE_PATTERN.match(self.code):
            raise ValueError(
                f"code must be 2-16 upper-case letters or digits starting with a letter, got {self.code!r}"
            )
        if not self.name.strip():
            raise ValueError("name must not be empty")
        for field in ("max_payment", "max_daily", "max_balance"):
            value = getattr(self, field)
            if not 1 <= value <= MAX_AMOUNT:
                raise ValueError(f"{field} must be between 1 and {MAX_AMOUNT}, got {value}")
        if self.max_daily < self.max_payment:
            raise ValueError(
                f"max_daily must be at least max_payment ({self.max_payment}), got {self.max_daily}"
            )
        for field in ("purchased_expiry_days", "bonus_expiry_days", "award_expiry_days"):
            value = getattr(self, field)
            if not 1 <= value <= 3650:
                raise ValueError(f"{field} must be between 1 and 3650, got {value}")
        if not 0 <= self.fee_rate_bp <= 1000:
            raise ValueError(f"fee_rate_bp must be between 0 and 1000, got {self.fee_rate_bp}")
        if not 30 <= self.sale_ttl_seconds <= 3600:
            raise ValueError(f"sale_ttl_seconds must be between 30 and 3600, got {self.sale_ttl_seconds}")

    @property
    def title_en(self) -> str:
        return self.name_en or self.code


DEFAULT_CURRENCY = CurrencyConfig(code="POINT", name="ポイント", name_en="Points")


class CurrencySettings(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    currencies: tuple[CurrencyConfig, ...] = (DEFAULT_CURRENCY,)
    """The municipality's currencies (at least one, codes unique)."""
    award_currency: str = ""
    """Currency that awards from other plugins are paid in when they name none; the first one when empty."""
    categories: tuple[str, ...] = DEFAULT_CATEGORIES
    """Merchant categories (lowercase words): the rows of the purchase statistics."""
    districts: dict[str, tuple[str, ...]] = msgspec.field(default_factory=dict)
    """District of residence (地区) -> the postal codes (``NNN-NNNN``) that make it up, for the statistics."""
    analytics_min_people: int = 10
    """k: a statistics cell covering fewer distinct people than this is suppressed (3 to 1000)."""
    expiry_notice_days: int = 7
    """Holders are told this many days before value expires (1 to 60)."""

    def __post_init__(self) -> None:
        if not self.currencies:
            raise ValueError("currencies must name at least one currency")
        codes = [c.code for c in self.currencies]
        if len(set(codes)) != len(codes):
            raise ValueError(f"currencies must have unique codes, got {', '.join(codes)}")
        if self.award_currency and self.award_currency not in codes:
            raise ValueError(f"award_currency must be one of {', '.join(codes)}, got {self.award_currency!r}")
        if not self.categories:
            raise ValueError("categories must not be empty")
        for category in self.categories:
            if not _CATEGORY.match(category):
                raise ValueError(f"categories: {category!r} must be lowercase letters, digits, '-' or '_'")
        seen: dict[str, str] = {}
        for district, codes_of in self.districts.items():
            if not district.strip() or len(district) > 32:
                raise ValueError(f"districts: name {district!r} must be 1 to 32 characters")
            for postal in codes_of:
                if not _POSTAL_CODE.match(postal):
                    raise ValueError(f"districts.{district}: postal code {postal!r} must be written NNN-NNNN")
                if postal in seen:
                    raise ValueError(
                        f"districts: postal code {postal} is in both {seen[postal]} and {district}"
                    )
                seen[postal] = district
        if not 3 <= self.analytics_min_people <= 1000:
            raise ValueError(
                f"analytics_min_people must be between 3 and 1000, got {self.analytics_min_people}"
            )
        if not 1 <= self.expiry_notice_days <= 60:
            raise ValueError(f"expiry_notice_days must be between 1 and 60, got {self.expiry_notice_days}")

    def currency(self, code: str) -> CurrencyConfig:
        """:raises KeyError: for a code this municipality does not run (callers turn it into an error)."""
        for config in self.currencies:
            if config.code == code:
                return config
        raise KeyError(code)

    @property
    def default_award_currency(self) -> str:
        return self.award_currency or self.currencies[0].code

    def district_of(self, postal_code: str | None) -> str | None:
        if postal_code is None:
            return None
        for district, codes in self.districts.items():
            if postal_code in codes:
                return district
        return None
