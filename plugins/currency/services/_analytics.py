"""Purchase statistics for evidence-based policy (EBPM), safe to hand to analysts.

What is published is one fixed table per currency and ISO week: net spending (payments less refunds) by merchant
category × age band × district of residence, with the number of distinct people and of payments in each cell,
and the week's total. Nothing else can be asked for: no other grouping, no filter, no period that is not a run of
whole weeks. That is what keeps the suppression sound:

- **k-anonymity.** A cell covering fewer than k distinct people (``analytics_min_people``) is suppressed.
- **Complementary suppression.** The week's total minus the published cells gives the sum of the suppressed ones,
  so the suppressed cells of a week must together cover at least k people; if they do not, the published cells
  with the fewest people are suppressed too, one at a time, until they do. The total itself is published only
  when the week has at least k people.
- **Fixed, non-overlapping cells.** Each cell is one week; two queries over overlapping runs of weeks return the
  same cells for the weeks they share, so subtracting one answer from another isolates nobody.
- **Frozen once published.** A week is computed once, after it is over (plus a margin for transactions still
  committing), stored, and served from storage ever after: a late refund counts in the week it is made, and a
  person who moves or gives their year of birth later does not change a published week. Comparing answers from
  two moments therefore reveals nothing either.

Person attributes are read when the week is published and not kept apart from the aggregate: the age band from
the year of birth the resident chose to give (:class:`~plugins.currency.models.HolderProfile`; the person record
has no date of birth), the district from the postal code of the person's address, through the municipality's
``districts`` table (``outside`` for people living in another municipality, ``other`` for an unlisted postal code,
``unknown`` without an address).
"""

from __future__ import annotations

import csv
import io
import re
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.audit import record
from core.db import bound_municipality, utcnow
from core.exceptions import InvalidInput
from core.identity.models import Account
from plugins.currency.config import CurrencySettings
from plugins.currency.models import (
    Entry,
    HolderProfile,
    LedgerAccount,
    Merchant,
    StatsCell,
    StatsWeek,
    Transfer,
)
from plugins.currency.schemas import StatsCellOut, StatsOut, StatsWeekOut
from plugins.currency.services._accounts import currency_of
from plugins.currency.services._reports import midnight
from plugins.currency.services._sql import insert_if_absent

SETTLE_MARGIN = timedelta(hours=1)
"""A week is published this long after it ends, when no payment made within it can still be committing."""
MAX_WEEKS = 53
_WEEK = re.compile(r"^(?P<year>[0-9]{4})-W(?P<week>[0-9]{2})$")
AGE_BANDS = ("0-19", "20-29", "30-39", "40-49", "50-59", "60-69", "70-79", "80+", "unknown")


def parse_week(text: str, field_name: str) -> date:
    """The Monday of an ISO week written ``2026-W07``. :raises InvalidInput: naming ``field_name``."""
    match = _WEEK.match(text.strip())
    if match is None:
        raise InvalidInput(f"{field_name}: must be an ISO week such as 2026-W07, got {text!r}")
    try:
        return date.fromisocalendar(int(match["year"]), int(match["week"]), 1)
    except ValueError:
        raise InvalidInput(f"{field_name}: {text} is not a week of that year") from None


def week_name(monday: date) -> str:
    year, week, _ = monday.isocalendar()
    return f"{year:04d}-W{week:02d}"


def age_band(birth_year: int | None, year: int) -> str:
    if birth_year is None:
        return "unknown"
    age = year - birth_year
    if age < 20:
        return "0-19"
    if age >= 80:
        return "80+"
    low = age // 10 * 10
    return f"{low}-{low + 9}"


@dataclass
class _Cell:
    people: set[uuid.UUID] = field(default_factory=set)
    payments: int = 0
    amount: int = 0


def suppress(cells: dict[tuple[str, str, str], _Cell], k: int) -> set[tuple[str, str, str]]:
    """The cells to withhold: those under k people, then (complementary) the smallest others until the withheld
    cells together cover at least k people, so that the week's total cannot single them out."""
    hidden = {key for key, cell in cells.items() if len(cell.people) < k}
    if not hidden:
        return hidden
    shown = sorted((key for key in cells if key not in hidden), key=lambda key: (len(cells[key].people), key))
    covered = set().union(*(cells[key].people for key in hidden))
    while len(covered) < k and shown:
        key = shown.pop(0)
        hidden.add(key)
        covered |= cells[key].people
    return hidden


async def _raw_week(
    session: AsyncSession, settings: CurrencySettings, currency: str, since: datetime, until: datetime
) -> dict[tuple[str, str, str], _Cell]:
    rows = (
        await session.execute(
            select(LedgerAccount.owner_id, Merchant.category, Transfer.kind, Entry.amount)
            .select_from(Entry)
            .join(Transfer, Transfer.id == Entry.transfer_id)
            .join(LedgerAccount, LedgerAccount.id == Entry.account_id)
            .join(Merchant, Merchant.id == Transfer.merchant_id)
            .where(
                Transfer.currency == currency,
                LedgerAccount.kind == "resident",
                Entry.created_at >= since,
                Entry.created_at < until,
            )
        )
    ).all()
    people = {owner for owner, _, _, _ in rows}
    years: dict[uuid.UUID, int | None] = {}
    homes: dict[uuid.UUID, str] = {}
    if people:
        for account_id, birth_year in await session.execute(
            select(HolderProfile.account_id, HolderProfile.birth_year).where(
                HolderProfile.account_id.in_(people)
            )
        ):
            years[account_id] = birth_year
        here = bound_municipality(session)
        for account_id, residence, postal_code in await session.execute(
            select(Account.id, Account.residence_municipality_id, Account.postal_code).where(
                Account.id.in_(people)
            )
        ):
            if residence is None:
                homes[account_id] = "unknown"
            elif residence != here:
                homes[account_id] = "outside"
            else:
                homes[account_id] = settings.district_of(postal_code) or (
                    "other" if postal_code else "unknown"
                )
    year = since.date().isocalendar()[0]
    cells: dict[tuple[str, str, str], _Cell] = defaultdict(_Cell)
    for owner, category, kind, amount in rows:
        cell = cells[(category, age_band(years.get(owner), year), homes.get(owner, "unknown"))]
        cell.people.add(owner)
        cell.payments += 1 if kind == "payment" else 0
        cell.amount += -amount
    return cells


async def publish_week(
    session: AsyncSession,
    settings: CurrencySettings,
    tz: ZoneInfo,
    *,
    currency: str,
    monday: date,
    actor: str,
    now: datetime | None = None,
) -> bool:
    """Compute and store one finished week (once: a week already published is left as it is).

    Returns whether this call published it. :raises InvalidInput: the week is not over (with its margin) yet.
    """
    now = now or utcnow()
    since, until = midnight(monday, tz), midnight(monday + timedelta(days=7), tz)
    if until + SETTLE_MARGIN > now:
        raise InvalidInput(f"week: {week_name(monday)} is not over yet")
    name = week_name(monday)
    exists = await session.get(StatsWeek, (bound_municipality(session), currency, name))
    if exists is not None:
        return False
    cells = await _raw_week(session, settings, currency, since, until)
    k = settings.analytics_min_people
    everyone = set().union(*(cell.people for cell in cells.values())) if cells else set()
    total_shown = len(everyone) >= k
    claimed = await insert_if_absent(
        session,
        StatsWeek,
        {
            "municipality_id": bound_municipality(session),
            "currency": currency,
            "week": name,
            "min_people": k,
            "people": len(everyone) if total_shown else None,
            "amount": sum(cell.amount for cell in cells.values()) if total_shown else None,
            "created_at": now,
        },
    )
    if not claimed:
        return False
    hidden = suppress(cells, k)
    session.add_all(
        StatsCell(
            currency=currency,
            week=name,
            category=category,
            age_band=band,
            district=district,
            people=None if (category, band, district) in hidden else len(cell.people),
            payments=None if (category, band, district) in hidden else cell.payments,
            amount=None if (category, band, district) in hidden else cell.amount,
        )
        for (category, band, district), cell in sorted(cells.items())
    )
    record(
        session,
        actor=actor,
        action="currency.stats_published",
        target_type="currency_stats_week",
        target_id=f"{currency}:{name}",
        payload={"cells": len(cells), "suppressed": len(hidden), "k": k},
    )
    await session.flush()
    return True


def last_finished_week(now: datetime, tz: ZoneInfo) -> date:
    """The Monday of the latest week that can be published at ``now``."""
    today = (now - SETTLE_MARGIN).astimezone(tz).date()
    return today - timedelta(days=today.weekday() + 7)


async def weekly_stats(
    session: AsyncSession,
    settings: CurrencySettings,
    tz: ZoneInfo,
    *,
    currency: str,
    first: str,
    last: str,
    actor: str,
    now: datetime | None = None,
) -> StatsOut:
    """The published weeks ``first`` to ``last`` (ISO weeks, both included); weeks not over yet are left out.
    A finished week asked for the first time is published now.

    :raises InvalidInput: malformed weeks, ``last`` before ``first``, more than 53 weeks, unknown currency.
    """
    now = now or utcnow()
    currency_of(settings, currency)
    start, end = parse_week(first, "from"), parse_week(last, "to")
    if end < start:
        raise InvalidInput(f"to: must not be before from ({first}), got {last}")
    if (end - start).days // 7 + 1 > MAX_WEEKS:
        raise InvalidInput(f"to: at most {MAX_WEEKS} weeks at a time")
    end = min(end, last_finished_week(now, tz))
    weeks = []
    monday = start
    while monday <= end:
        await publish_week(session, settings, tz, currency=currency, monday=monday, actor=actor, now=now)
        weeks.append(week_name(monday))
        monday += timedelta(days=7)
    stored = {
        w.week: w
        for w in await session.scalars(
            select(StatsWeek).where(StatsWeek.currency == currency, StatsWeek.week.in_(weeks))
        )
    }
    cells: dict[str, list[StatsCellOut]] = defaultdict(list)
    for cell in await session.scalars(
        select(StatsCell)
        .where(StatsCell.currency == currency, StatsCell.week.in_(weeks))
        .order_by(StatsCell.week, StatsCell.category, StatsCell.age_band, StatsCell.district)
    ):
        cells[cell.week].append(
            StatsCellOut(
                category=cell.category,
                age_band=cell.age_band,
                district=cell.district,
                people=cell.people,
                payments=cell.payments,
                amount=cell.amount,
            )
        )
    return StatsOut(
        currency=currency,
        weeks=[
            StatsWeekOut(
                week=name,
                people=stored[name].people,
                amount=stored[name].amount,
                min_people=stored[name].min_people,
                cells=cells.get(name, []),
            )
            for name in weeks
        ],
    )


CSV_COLUMNS = ("week", "category", "age_band", "district", "people", "payments", "amount")
TOTAL = "*"


def stats_rows(stats: StatsOut) -> list[list[str]]:
    """CSV rows: one per cell, then the week's total with ``*`` in the grouping columns; empty values are
    suppressed."""

    def text(value: int | None) -> str:
        return "" if value is None else str(value)

    rows = [list(CSV_COLUMNS)]
    for week in stats.weeks:
        for cell in week.cells:
            rows.append(
                [
                    week.week,
                    cell.category,
                    cell.age_band,
                    cell.district,
                    text(cell.people),
                    text(cell.payments),
                    text(cell.amount),
                ]
            )
        rows.append([week.week, TOTAL, TOTAL, TOTAL, text(week.people), "", text(week.amount)])
    return rows


def stats_csv(stats: StatsOut) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(stats_rows(stats))
    return buffer.getvalue()
