"""Opening hours, closed days and slots: what a resident sees as bookable on a given day."""

from __future__ import annotations

from datetime import date, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.exceptions import InvalidInput
from plugins.booking.services._calendar import (
    DayRules,
    day_hours,
    day_slots,
    parse_time,
    validate_fixed_slots,
)

JST = ZoneInfo("Asia/Tokyo")
WEEK = {str(d): ["09:00", "21:00"] for d in range(7)}
FIXED = [{"name": "午前", "start": "09:00", "end": "12:00"}, {"name": "午後", "start": "13:00", "end": "17:00"},
         {"name": "夜間", "start": "18:00", "end": "21:00"}]  # fmt: skip


def test_year_end_holidays_and_own_closed_days_close_the_facility() -> None:
    rules = DayRules(hours=WEEK, closed_on_holidays=True, closed_dates=frozenset({"2026-12-08"}))
    assert day_hours(rules, date(2026, 12, 29)) is None  # 年末年始
    assert day_hours(rules, date(2027, 1, 3)) is None
    assert day_hours(rules, date(2027, 1, 4)) == (time(9), time(21))
    assert day_hours(rules, date(2026, 11, 23)) is None  # 勤労感謝の日
    assert day_hours(rules, date(2026, 12, 8)) is None  # the facility's own 休館日
    open_on_holidays = DayRules(hours=WEEK, closed_year_end=False)
    assert day_hours(open_on_holidays, date(2026, 11, 23)) == (time(9), time(21))
    assert day_hours(open_on_holidays, date(2026, 12, 31)) == (time(9), time(21))


def test_closed_weekdays_and_seasonal_hours() -> None:
    hours = {
        d: ["09:00", "17:00"] for d in ("0", "2", "3", "4", "5", "6")
    }  # 月水木金土日: closed on Tuesdays
    rules = DayRules(hours=hours, exceptions=[{"months": [6, 7, 8], "closes": "19:00"}])
    assert day_hours(rules, date(2026, 12, 1)) is None  # a Tuesday
    assert day_hours(rules, date(2026, 12, 2)) == (time(9), time(17))
    assert day_hours(rules, date(2026, 7, 1)) == (time(9), time(19))  # 6～8月は19:00まで


def test_weekend_and_holiday_rule() -> None:
    rules = DayRules(hours=WEEK, exceptions=[{"weekdays": [5, 6], "holidays": True, "closes": "17:00"}])
    assert day_hours(rules, date(2026, 12, 5)) == (time(9), time(17))  # Saturday
    assert day_hours(rules, date(2026, 11, 23)) == (time(9), time(17))  # a Monday holiday
    assert day_hours(rules, date(2026, 11, 24)) == (time(9), time(21))


def test_minute_slots_fill_the_day_and_fixed_slots_keep_their_names() -> None:
    rules = DayRules(hours=WEEK)
    hourly = day_slots(rules, date(2026, 12, 2), JST, slot_minutes=90, fixed_slots=[])
    assert [s.starts_at.strftime("%H:%M") for s in hourly] == [
        "09:00",
        "10:30",
        "12:00",
        "13:30",
        "15:00",
        "16:30",
        "18:00",
        "19:30",
    ]
    assert hourly[0].starts_at.utcoffset().total_seconds() == 9 * 3600  # type: ignore[union-attr]
    fixed = day_slots(rules, date(2026, 12, 2), JST, slot_minutes=None, fixed_slots=FIXED)
    assert [s.name for s in fixed] == ["午前", "午後", "夜間"]
    short = DayRules(hours={"2": ["09:00", "17:00"]})
    assert [
        s.name for s in day_slots(short, date(2026, 12, 2), JST, slot_minutes=None, fixed_slots=FIXED)
    ] == ["午前", "午後"]


def test_bad_times_and_overlapping_fixed_slots_are_refused_with_the_field() -> None:
    with pytest.raises(InvalidInput, match="fixed_slots\\[1\\]: overlaps"):
        validate_fixed_slots([{"start": "09:00", "end": "12:00"}, {"start": "11:00", "end": "13:00"}])
    with pytest.raises(InvalidInput, match="hours.3"):
        parse_time("25:00", "hours.3")
    assert parse_time("9：30", "x") == time(9, 30)  # a full-width colon, as published files have


@given(opens=st.integers(0, 22), length=st.integers(1, 14), step=st.sampled_from([15, 30, 45, 60, 90, 120]))
def test_minute_slots_never_leave_the_opening_hours_and_never_overlap(
    opens: int, length: int, step: int
) -> None:
    closes = min(opens + length, 24)
    rules = DayRules(hours={"2": [f"{opens:02d}:00", f"{closes:02d}:00" if closes < 24 else "24:00"]})
    slots = day_slots(rules, date(2026, 12, 2), JST, slot_minutes=step, fixed_slots=[])
    assert all(s.ends_at - s.starts_at == timedelta(minutes=step) for s in slots)
    assert all(a.ends_at <= b.starts_at for a, b in zip(slots, slots[1:], strict=False))
    if slots:
        assert slots[0].starts_at.hour == opens
        assert (slots[-1].ends_at - slots[0].starts_at).total_seconds() <= (closes - opens) * 3600
