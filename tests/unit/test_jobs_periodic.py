"""Periods of periodic jobs, the options of ``@job`` and ``Periodic``, and the relay's configuration."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.exceptions import ImproperlyConfigured
from core.jobs import JobContext, Periodic, job
from core.jobs.periodic import periodic_key
from core.outbox.relay import RelayConfig


@job()
async def sweep(ctx: JobContext) -> None: ...


async def unmarked(ctx: JobContext) -> None: ...


moments = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))


@given(now=moments, seconds=st.integers(min_value=1, max_value=8 * 86400))
def test_every_period_contains_now_and_all_processes_agree_on_it(now: datetime, seconds: int) -> None:
    periodic = Periodic(job=sweep, every=timedelta(seconds=seconds))
    start = periodic.period_start(now, "Asia/Tokyo")
    assert start <= now < start + periodic.every
    # Any moment in the same period names the same start: that start is the claim every process races for.
    assert periodic.period_start(start + (now - start) / 2, "Asia/Tokyo") == start


@given(
    now=moments,
    at=st.times(),
    zone=st.sampled_from(["Asia/Tokyo", "Europe/Berlin", "America/New_York", "UTC"]),
)
def test_a_daily_period_starts_at_the_wall_clock_time_in_the_municipalitys_zone(
    now: datetime, at: time, zone: str
) -> None:
    periodic = Periodic(job=sweep, daily_at=at)
    start = periodic.period_start(now, zone)
    assert start <= now
    local = start.astimezone(ZoneInfo(zone))
    assert local.date() in (
        now.astimezone(ZoneInfo(zone)).date(),
        now.astimezone(ZoneInfo(zone)).date() - timedelta(days=1),
    )
    if zone in ("Asia/Tokyo", "UTC"):  # no daylight saving: exactly the time asked for, and a day long
        assert local.time() == at
        assert now < start + timedelta(days=1)


def test_nine_in_the_morning_in_miki() -> None:
    periodic = Periodic(job=sweep, daily_at=time(9, 0))
    before_nine = datetime(2026, 4, 1, 23, 30, tzinfo=UTC)  # 08:30 on 2 April in Japan
    assert periodic.period_start(before_nine, "Asia/Tokyo") == datetime(2026, 4, 1, 0, 0, tzinfo=UTC)
    assert periodic.period_start(before_nine + timedelta(hours=1), "Asia/Tokyo") == datetime(
        2026, 4, 2, 0, 0, tzinfo=UTC
    )
    assert periodic_key("booking.remind", datetime(2026, 4, 2, 0, 0, tzinfo=UTC)) == (
        "periodic:booking.remind:2026-04-02T00:00:00Z"
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"job": unmarked, "every": timedelta(minutes=5)}, "must be marked with @core.jobs.job"),
        ({"job": sweep}, "exactly one of every= and daily_at="),
        (
            {"job": sweep, "every": timedelta(hours=1), "daily_at": time(9)},
            "exactly one of every= and daily_at=",
        ),
        ({"job": sweep, "every": timedelta(milliseconds=10)}, "every must be at least 1 second"),
        ({"job": sweep, "daily_at": time(9, tzinfo=UTC)}, "give no tzinfo"),
    ],
)
def test_periodic_refuses_what_cannot_be_scheduled(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=message):
        Periodic(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_retries": -1}, "max_retries must be 0 or more"),
        ({"time_limit_ms": 0}, "time_limit_ms must be at least 1"),
        ({"min_backoff_ms": 5000, "max_backoff_ms": 1000}, "min_backoff_ms must not exceed max_backoff_ms"),
    ],
)
def test_job_options_are_checked_where_they_are_given(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=message):
        job(**kwargs)


def test_the_poll_interval_comes_from_the_environment_and_is_checked() -> None:
    assert RelayConfig.from_env({}).poll_interval == 1.0
    assert RelayConfig.from_env({"TSUNAGU_OUTBOX_POLL_INTERVAL": "0.2"}).poll_interval == 0.2
    for bad in ("soon", "0", "120"):
        with pytest.raises(ImproperlyConfigured, match="TSUNAGU_OUTBOX_POLL_INTERVAL"):
            RelayConfig.from_env({"TSUNAGU_OUTBOX_POLL_INTERVAL": bad})
