"""Opening hours, closed days and slots: pure functions of a facility, a unit and a date. No database here.

A day's hours start from the facility's weekday table, then each hours exception that matches the date is
applied in order (``{"months": [6, 7, 8], "closes": "19:00"}``: June to August it closes at 19:00;
``{"weekdays": [5, 6], "holidays": true, "closes": "17:00"}``: weekends and holidays until 17:00;
``{"months": [9], "closed": true}``). A day is closed when the facility is closed that weekday, on its own
休館日, over 年末年始 (29 December – 3 January) unless switched off, or on a public holiday if it closes then.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import jpholiday
import msgspec

from core.exceptions import InvalidInput

WEEKDAY_KANJI = "月火水木金土日"
_TIME = re.compile(r"^([01]?\d|2[0-4])[:：]([0-5]\d)$")


class Slot(msgspec.Struct, kw_only=True, frozen=True):
    """One bookable slot of one day, in the municipality's time zone."""

    starts_at: datetime
    ends_at: datetime
    name: str = ""


class DayRules(msgspec.Struct, kw_only=True, frozen=True):
    """What decides a facility's days, lifted off the ORM row so it can be cached and tested alone."""

    hours: Mapping[str, Sequence[str]]
    exceptions: Sequence[Mapping[str, Any]] = ()
    closed_on_holidays: bool = False
    closed_year_end: bool = True
    closed_dates: frozenset[str] = frozenset()


def parse_time(value: str, field: str) -> time:
    """``"09:00"`` (also ``9:00``, full-width colon) -> ``time``; ``"24:00"`` is the end of the day.

    :raises InvalidInput: naming ``field``.
    """
    match = _TIME.match(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise InvalidInput(f"{field}: expected a time HH:MM, got {value!r}")
    hour, minute = int(match[1]), int(match[2])
    if hour == 24 and minute == 0:
        return time.max
    if hour > 23:
        raise InvalidInput(f"{field}: expected a time HH:MM, got {value!r}")
    return time(hour, minute)


def format_time(value: time) -> str:
    return "24:00" if value == time.max else value.strftime("%H:%M")


def is_year_end(day: date) -> bool:
    return (day.month == 12 and day.day >= 29) or (day.month == 1 and day.day <= 3)


def is_holiday(day: date) -> bool:
    return bool(jpholiday.is_holiday(day))


def _matches(rule: Mapping[str, Any], day: date) -> bool:
    months = rule.get("months")
    if months and day.month not in months:
        return False
    weekdays = rule.get("weekdays")
    holidays = rule.get("holidays", False)
    if weekdays is None and not holidays:
        return True
    return (weekdays is not None and day.weekday() in weekdays) or (holidays and is_holiday(day))


def day_hours(rules: DayRules, day: date) -> tuple[time, time] | None:
    """The facility's opening and closing time on ``day``, or ``None`` when it is closed."""
    if day.isoformat() in rules.closed_dates:
        return None
    if rules.closed_year_end and is_year_end(day):
        return None
    if rules.closed_on_holidays and is_holiday(day):
        return None
    base = rules.hours.get(str(day.weekday()))
    opens = closes = None
    if base:
        opens, closes = parse_time(base[0], "hours"), parse_time(base[1], "hours")
    for rule in rules.exceptions:
        if not _matches(rule, day):
            continue
        if rule.get("closed"):
            return None
        if rule.get("opens"):
            opens = parse_time(rule["opens"], "hours_exceptions.opens")
        if rule.get("closes"):
            closes = parse_time(rule["closes"], "hours_exceptions.closes")
    if opens is None or closes is None or opens >= closes:
        return None
    return opens, closes


def _at(day: date, moment: time, zone: ZoneInfo) -> datetime:
    if moment == time.max:
        return datetime.combine(day + timedelta(days=1), time(0), zone)
    return datetime.combine(day, moment, zone)


def day_slots(
    rules: DayRules,
    day: date,
    zone: ZoneInfo,
    *,
    slot_minutes: int | None,
    fixed_slots: Sequence[Mapping[str, str]],
) -> list[Slot]:
    """The slots of one unit on ``day``: its fixed 時間区分 that lie within the day's hours, or N-minute slots
    from opening time to closing time. Empty when the facility is closed."""
    return slots_within(
        day_hours(rules, day), day, zone, slot_minutes=slot_minutes, fixed=parse_fixed(fixed_slots)
    )


def parse_fixed(fixed_slots: Sequence[Mapping[str, str]]) -> list[tuple[time, time, str]]:
    """Fixed slots as times, parsed once for a range of days."""
    return [
        (
            parse_time(f["start"], "fixed_slots.start"),
            parse_time(f["end"], "fixed_slots.end"),
            f.get("name", ""),
        )
        for f in fixed_slots
    ]


def slots_within(
    hours: tuple[time, time] | None,
    day: date,
    zone: ZoneInfo,
    *,
    slot_minutes: int | None,
    fixed: Sequence[tuple[time, time, str]],
) -> list[Slot]:
    """:func:`day_slots` for a day whose hours are known (``None``: closed)."""
    if hours is None:
        return []
    opens, closes = _at(day, hours[0], zone), _at(day, hours[1], zone)
    if fixed:
        slots = []
        for start_time, end_time, name in fixed:
            start, end = _at(day, start_time, zone), _at(day, end_time, zone)
            if opens <= start and end <= closes:
                slots.append(Slot(starts_at=start, ends_at=end, name=name))
        return slots
    step = timedelta(minutes=slot_minutes or 60)
    slots, start = [], opens
    while start + step <= closes:
        slots.append(Slot(starts_at=start, ends_at=start + step))
        start += step
    return slots


def days(first: date, last: date) -> Iterable[date]:
    day = first
    while day <= last:
        yield day
        day += timedelta(days=1)


def to_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


def validate_hours(hours: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """Check a weekday table given over the API or the CLI. :raises InvalidInput: naming the weekday."""
    checked: dict[str, list[str]] = {}
    for key, span in hours.items():
        if key not in {str(n) for n in range(7)}:
            raise InvalidInput(f"hours: weekday keys are 0 (Monday) to 6 (Sunday), got {key!r}")
        if not isinstance(span, list | tuple) or len(span) != 2:
            raise InvalidInput(f"hours.{key}: expected [opens, closes], got {span!r}")
        opens, closes = parse_time(span[0], f"hours.{key}"), parse_time(span[1], f"hours.{key}")
        if opens >= closes:
            raise InvalidInput(f"hours.{key}: must open before it closes, got {span[0]}–{span[1]}")
        checked[key] = [format_time(opens), format_time(closes)]
    return checked


def validate_fixed_slots(slots: Sequence[Mapping[str, str]]) -> list[dict[str, str]]:
    """:raises InvalidInput: a slot without start or end, ending before it starts, or overlapping another."""
    checked, spans = [], []
    for index, slot in enumerate(slots):
        where = f"fixed_slots[{index}]"
        if "start" not in slot or "end" not in slot:
            raise InvalidInput(f"{where}: needs start and end")
        start, end = parse_time(slot["start"], f"{where}.start"), parse_time(slot["end"], f"{where}.end")
        if start >= end:
            raise InvalidInput(f"{where}: must start before it ends")
        for other_start, other_end in spans:
            if start < other_end and other_start < end:
                raise InvalidInput(f"{where}: overlaps another slot")
        spans.append((start, end))
        checked.append(
            {"name": str(slot.get("name", ""))[:20], "start": format_time(start), "end": format_time(end)}
        )
    return checked


def now_utc() -> datetime:
    return datetime.now(UTC)
