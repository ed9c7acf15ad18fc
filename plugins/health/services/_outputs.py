"""What the plugin gives back: participation statistics for EBPM, the open data event list, reminders.

Statistics count people who attended at least once, by age band and district, and the mean change of each
measure between before and after, by age band; every cell counting fewer people than the municipality's
``min_cell`` (default 10) is suppressed: published as ``null``.
No totals are published beside the cells, so a suppressed cell cannot be recovered by subtraction.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.exceptions import InvalidInput
from plugins.health.models import Event, Measure, Person, Registration
from plugins.health.schemas import OutcomeCell, Stats, StatsCell
from plugins.health.services._context import HealthContext
from plugins.health.services._people import notify_to

BANDS = (
    (0, 59, "-59"),
    (60, 64, "60-64"),
    (65, 69, "65-69"),
    (70, 74, "70-74"),
    (75, 79, "75-79"),
    (80, 150, "80+"),
)


def age_band(age: int) -> str:
    return next(label for low, high, label in BANDS if low <= age <= high)


async def stats(session: AsyncSession, ctx: HealthContext, first: date, last: date) -> Stats:
    """Attendance between ``first`` and ``last`` (local dates, inclusive). :raises InvalidInput: a bad range."""
    if last < first or (last - first).days > 366 * 5:
        raise InvalidInput("last: must be on or after first, at most five years later")
    start = datetime.combine(first, datetime.min.time(), ctx.zone)
    end = datetime.combine(last + timedelta(days=1), datetime.min.time(), ctx.zone)
    rows = await session.execute(
        select(Person.id, Person.birth_year, Person.district, Event.starts_at)
        .join(Registration, Registration.person_id == Person.id)
        .join(Event, Event.id == Registration.event_id)
        .where(Registration.checked_in_at.is_not(None), Event.starts_at >= start, Event.starts_at < end)
    )
    people: dict[tuple[str, str], set[object]] = defaultdict(set)
    attendances: dict[tuple[str, str], int] = defaultdict(int)
    for person_id, birth_year, district, starts_at in rows.all():
        cell = (age_band(ctx.local_date(starts_at).year - birth_year), district or "不明")
        people[cell].add(person_id)
        attendances[cell] += 1
    k = ctx.settings.min_cell
    cells = [
        StatsCell(
            age_band=band,
            district=district,
            people=len(people[(band, district)]) if len(people[(band, district)]) >= k else None,
            attendances=attendances[(band, district)] if len(people[(band, district)]) >= k else None,
        )
        for band, district in sorted(people)
    ]
    return Stats(
        first=first, last=last, min_cell=k, cells=cells, outcomes=await _outcomes(session, ctx, start, end)
    )


async def _outcomes(
    session: AsyncSession, ctx: HealthContext, start: datetime, end: datetime
) -> list[OutcomeCell]:
    """Change between a person's first ``before`` and last ``after`` measure of each kind, by age band. Only
    measures under a live consent exist (a withdrawal deletes them), so only those are counted."""
    rows = await session.execute(
        select(
            Measure.person_id, Measure.kind, Measure.phase, Measure.value, Person.birth_year, Event.starts_at
        )
        .join(Person, Person.id == Measure.person_id)
        .join(Event, Event.id == Measure.event_id)
        .where(Event.starts_at >= start, Event.starts_at < end)
        .order_by(Event.starts_at, Measure.recorded_at)
    )
    before: dict[tuple[object, str], float] = {}
    after: dict[tuple[object, str], float] = {}
    band_of: dict[object, str] = {}
    for person_id, kind, phase, value, birth_year, starts_at in rows.all():
        band_of.setdefault(person_id, age_band(ctx.local_date(starts_at).year - birth_year))
        if phase == "before":
            before.setdefault((person_id, kind), value)
        else:
            after[(person_id, kind)] = value
    changes: dict[tuple[str, str], list[float]] = defaultdict(list)
    for (person_id, kind), first_value in before.items():
        if (person_id, kind) in after:
            changes[(band_of[person_id], kind)].append(after[(person_id, kind)] - first_value)
    k = ctx.settings.min_cell
    return [
        OutcomeCell(
            age_band=band,
            kind=kind,
            people=len(values) if len(values) >= k else None,
            mean_change=round(sum(values) / len(values), 1) if len(values) >= k else None,
        )
        for (band, kind), values in sorted(changes.items())
    ]


EVENT_HEADERS = (
    "全国地方公共団体コード", "ID", "地方公共団体名", "イベント名", "イベント名_カナ", "イベント名_英字", "開始日", "終了日",
    "開始時間", "終了時間", "開始日時特記事項", "説明", "料金(基本)", "料金(詳細)", "連絡先名称", "連絡先電話番号",
    "連絡先内線番号", "主催者", "場所名称", "所在地_連結表記", "建物名等(方書)", "緯度", "経度", "アクセス方法",
    "駐車場情報", "定員", "参加申込終了日", "参加申込終了時間", "参加申込方法", "URL", "備考",
)  # fmt: skip
"""The columns of the 自治体標準オープンデータセット イベント一覧, in order."""

APPLY_BY = "アプリ、または電話・窓口(紙の申込書)。ご家族による代理申込もできます。"


def _target(event: Event) -> str:
    parts = []
    if event.min_age is not None:
        parts.append(f"{event.min_age}歳以上")
    if event.residents_only:
        parts.append("町内在住の方")
    return "対象: " + "、".join(parts) if parts else ""


def event_rows(events: list[Event], ctx: HealthContext) -> list[list[str]]:
    """Rows of the イベント一覧 (header first); times in the municipality's zone."""
    rows: list[list[str]] = [list(EVENT_HEADERS)]
    for event in events:
        start, end = event.starts_at.astimezone(ctx.zone), event.ends_at.astimezone(ctx.zone)
        values = {
            "全国地方公共団体コード": ctx.municipality.code,
            "ID": str(event.id),
            "地方公共団体名": ctx.municipality.name,
            "イベント名": event.title,
            "イベント名_カナ": event.title_kana,
            "開始日": start.date().isoformat(),
            "終了日": end.date().isoformat(),
            "開始時間": start.strftime("%H:%M"),
            "終了時間": end.strftime("%H:%M"),
            "説明": event.description,
            "料金(基本)": "無料",
            "主催者": ctx.municipality.name,
            "場所名称": event.venue,
            "所在地_連結表記": event.address,
            "定員": str(event.capacity),
            "参加申込終了日": (start.date() - timedelta(days=1)).isoformat(),
            "参加申込方法": APPLY_BY,
            "備考": _target(event),
        }
        rows.append([values.get(column, "") for column in EVENT_HEADERS])
    return rows


def to_csv(rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue()


async def send_reminders(session: AsyncSession, ctx: HealthContext) -> int:
    """Queue one reminder per registration for a session tomorrow (local date); how many. Idempotent: the
    notification key is the registration's, so running twice a day queues nothing new. People without an
    account or family proxy are on the staff's roster for a phone call instead."""
    from core.notifications import notify

    tomorrow = ctx.local_date(ctx.current()) + timedelta(days=1)
    first = datetime.combine(tomorrow, datetime.min.time(), ctx.zone)
    rows = await session.execute(
        select(Registration, Person, Event)
        .join(Person, Person.id == Registration.person_id)
        .join(Event, Event.id == Registration.event_id)
        .where(
            Registration.state == "registered",
            Event.starts_at >= first,
            Event.starts_at < first + timedelta(days=1),
        )
    )
    count = 0
    for registration, person, event in rows.all():
        if not (to := notify_to(person)):
            continue
        await notify(
            session,
            template="health.reminder",
            to=to,
            context={
                "title": event.title,
                "venue": event.venue,
                "when": event.starts_at.astimezone(ctx.zone).strftime("%Y-%m-%d %H:%M"),
                "short_code": person.short_code,
            },
            key=f"health:reminder:{registration.id}",
        )
        count += 1
    return count
