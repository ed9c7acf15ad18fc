"""Settings of the notices plugin, per municipality (``[plugins.notices]`` in its manifest)."""

from __future__ import annotations

import re

import msgspec

DEFAULT_CATEGORIES = ("general", "bousai", "kosodate", "event")
_CATEGORY = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


class NoticesSettings(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    page_size: int = 20
    """Notices per page of the public list (1 to 100)."""
    categories: tuple[str, ...] = DEFAULT_CATEGORIES
    """Categories this town uses: 一般 general, 防災 bousai, 子育て kosodate, イベント event, or its own."""

    def __post_init__(self) -> None:
        if not 1 <= self.page_size <= 100:
            raise ValueError(f"page_size must be between 1 and 100, got {self.page_size}")
        if not self.categories:
            raise ValueError("categories must not be empty")
        for category in self.categories:
            if not _CATEGORY.match(category):
                raise ValueError(f"categories: {category!r} must be lowercase letters, digits, '-' or '_'")
