"""Fixtures of the booking tests: a town (三木町) with the plugin enabled, and a gym in it."""

from __future__ import annotations

import pytest

from core.platform import Platform
from tests.integration.booking.helpers import Gym, Town


@pytest.fixture
def town(platform: Platform) -> Town:
    return Town(platform, "miki")


@pytest.fixture
def other_town(platform: Platform) -> Town:
    return Town(platform, "takamatsu")


@pytest.fixture
async def gym(town: Town) -> Gym:
    return await town.gym()
