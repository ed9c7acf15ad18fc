"""Fixtures of the health tests: 三木町 (currency enabled) and 土庄町 (no currency), both with health on."""

from __future__ import annotations

import pytest

from core.platform import Platform
from tests.integration.health.helpers import Town


@pytest.fixture
def town(platform: Platform) -> Town:
    return Town(platform, "miki")


@pytest.fixture
def tonosho(platform: Platform) -> Town:
    return Town(platform, "tonosho")
