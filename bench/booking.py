"""Booking: the availability read and booking throughput, on SQLite and PostgreSQL.

- **availability**: ``GET /m/miki/booking/facilities/<id>/availability`` for one facility with 10 units (two of
  them halves of a whole, one with fixed 時間区分) over one month, with about 300 live bookings in that month,
  through the whole app (routing, tenant session, two queries, the slots computed, JSON). ``--reads`` requests one
  at a time; prints the median and 95th percentile. Goal: under 50 ms.
- **bookings**: ``--clients`` concurrent people each holding and confirming ``--per-client`` distinct slots
  through the services a ``POST /booking/reservations`` and its ``/confirm`` call (rules, workflow, occupancy
  rows under the no-overlap guard, audit events, notification), one transaction each; bookings per second.
- **contended**: the same clients all asking for the same few slots: how fast refusals (409) come back, and that
  exactly one booking per slot stands.

    .venv/bin/python bench/booking.py
    .venv/bin/python bench/booking.py --backend sqlite --reads 300

Databases as ``bench/run`` makes them (:mod:`bench.databases`): on PostgreSQL through ``--postgres-admin-url`` (a
superuser; default ``postgresql://postgres@127.0.0.1:5432/postgres``, or ``TSUNAGU_BENCH_POSTGRES_URL``), owned by
and used as the unprivileged role ``tsunagu_app`` (row-level security on), dropped at the end; on SQLite, files in
a temporary folder. The HTTP figures with a reference beside them are ``bench/run``'s (``booking_write``,
``booking_availability``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from datetime import date, datetime, timedelta
from datetime import time as clock
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.databases import SECRET, PostgresBackend, SQLiteBackend  # noqa: E402
from bench.options import DEFAULT_ADMIN_URL  # noqa: E402
from core.app import create_app  # noqa: E402
from core.identity.models import Account, RoleGrant  # noqa: E402
from core.identity.principal import Principal  # noqa: E402
from core.platform import Platform, create_platform  # noqa: E402
from core.settings import Settings  # noqa: E402
from core.tenancy import service  # noqa: E402
from core.tenancy.manifest import load_manifests  # noqa: E402
from plugins.booking.schemas import FacilityCreate, FixedSlot, ReservationCreate, UnitCreate  # noqa: E402
from plugins.booking.services import SlotTaken, context_for, facilities, reservations  # noqa: E402
from plugins.booking.services._calendar import is_holiday, is_year_end  # noqa: E402
from tests.asgi import lifespan_client  # noqa: E402

MANIFESTS = sorted((ROOT / "municipalities").glob("*.toml"))
TOWN = "miki"
JST = ZoneInfo("Asia/Tokyo")
GOAL_MS = 50.0
CONTESTED = 12
"""Slots of one unit the contended run races for: the whole arena from 09:00 to 21:00."""


def settings(url: str) -> Settings:
    return Settings(database_url=url, environment="test", log_level="warning", secret_key=SECRET)


def open_days(first: date, count: int) -> list[date]:
    days, day = [], first
    while len(days) < count:
        if not is_holiday(day) and not is_year_end(day):
            days.append(day)
        day += timedelta(days=1)
    return days


async def people(platform: Platform, count: int) -> list[Principal]:
    municipality = platform.municipality(TOWN)
    accounts = []
    async with platform.sessions.platform() as session:
        for i in range(count):
            account = Account(email=f"bench-{i}-{uuid.uuid4().hex[:6]}@example.jp", display_name="bench",
                              residence_municipality_id=municipality.id)  # fmt: skip
            session.add(account)
            accounts.append(account)
    async with platform.sessions.tenant(municipality.id) as session:
        for account in accounts:
            session.add(RoleGrant(account_id=account.id, role="resident"))
    return [
        Principal(
            kind="session", account_id=a.id, municipality_id=municipality.id, roles=frozenset({"resident"})
        )
        for a in accounts
    ]


async def facility(platform: Platform) -> tuple[uuid.UUID, list[uuid.UUID]]:
    """A gym with 10 units: a whole arena and its two halves, a room with 時間区分, six courts."""
    municipality = platform.municipality(TOWN)
    hours = {str(d): ["09:00", "21:00"] for d in range(7)}
    async with platform.sessions.tenant(municipality.id) as session:
        gym = await facilities.create_facility(
            session, FacilityCreate(name="総合体育館", kind="gymnasium", hours=hours)
        )
        whole = await facilities.add_unit(session, gym.id, UnitCreate(name="アリーナ全面", fee_resident=1000))
        units = [whole.id]
        for name in ("A面", "B面"):
            units.append(
                (await facilities.add_unit(session, gym.id, UnitCreate(name=name, parent_id=whole.id))).id
            )
        room = UnitCreate(name="会議室", fixed_slots=[FixedSlot(name="午前", start="09:00", end="12:00"),
                                                      FixedSlot(name="午後", start="13:00", end="17:00"),
                                                      FixedSlot(name="夜間", start="18:00", end="21:00")])  # fmt: skip
        units.append((await facilities.add_unit(session, gym.id, room)).id)
        for n in range(6):
            court = UnitCreate(name=f"コート{n + 1}", cleanup_minutes=15 if n % 2 else 0)
            units.append((await facilities.add_unit(session, gym.id, court)).id)
    return gym.id, units


async def book(
    platform: Platform, who: Principal, unit: uuid.UUID, day: date, hour: int, confirm: bool
) -> bool:
    municipality = platform.municipality(TOWN)
    ctx = context_for(platform, municipality)
    start = datetime.combine(day, clock(hour), JST)
    data = ReservationCreate(unit_id=unit, starts_at=start, ends_at=start + timedelta(hours=1))
    try:
        async with platform.sessions.tenant(municipality.id) as session:
            held = await reservations.book(
                session,
                ctx,
                data,
                account_id=who.account_id,
                actor=who,
                check_rules=False,  # type: ignore[arg-type]
            )
            if confirm:
                await reservations.act(session, held.id, "confirm", actor=who, account_id=who.account_id)
    except SlotTaken:
        return False
    return True


async def bench_availability(
    platform: Platform, args: argparse.Namespace, gym: uuid.UUID, units: list[uuid.UUID]
) -> list[float]:
    first = (datetime.now(JST).date() + timedelta(days=40)).replace(day=1)
    last = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    crowd = await people(platform, 10)
    days = open_days(first, last.day - 3)
    # About 300 live bookings in the month on the hourly units (the room's fixed slots stay free).
    hourly = [u for i, u in enumerate(units) if i != 3]
    tasks = [
        (crowd[n % 10], hourly[(n * 7) % len(hourly)], days[n % len(days)], 9 + (n * 5) % 12)
        for n in range(330)
    ]
    made = sum([await book(platform, who, unit, day, hour, confirm=True) for who, unit, day, hour in tasks])
    app = create_app(platform=platform, run_jobs_in_process=False)
    url = f"/m/{TOWN}/booking/facilities/{gym}/availability"
    params = {"first": first.isoformat(), "last": last.isoformat()}
    timings = []
    async with lifespan_client(app) as http:
        for n in range(args.reads + 20):
            started = time.perf_counter()
            response = await http.get(url, params=params)
            elapsed = (time.perf_counter() - started) * 1000
            assert response.status_code == 200, response.text
            if n >= 20:  # warm-up
                timings.append(elapsed)
        slots = sum(len(d["slots"]) for u in response.json()["units"] for d in u["days"])
    print(f"  availability: 10 units x {last.day} days = {slots} slots, {made} live bookings in the month")
    return timings


async def bench_bookings(
    platform: Platform, args: argparse.Namespace, units: list[uuid.UUID]
) -> tuple[float, float, int]:
    crowd = await people(platform, args.clients)
    days = open_days(datetime.now(JST).date() + timedelta(days=100), args.per_client)
    courts = units[4:]

    async def client(index: int, who: Principal) -> None:
        for n in range(args.per_client):
            assert await book(
                platform,
                who,
                courts[index % len(courts)],
                days[n],
                9 + 2 * (index // len(courts)),
                confirm=True,
            )

    started = time.perf_counter()
    await asyncio.gather(*(client(i, who) for i, who in enumerate(crowd)))
    free_rate = args.clients * args.per_client / (time.perf_counter() - started)

    contested = open_days(datetime.now(JST).date() + timedelta(days=200), 1)[0]
    wins = []

    async def racer(index: int, who: Principal) -> None:
        for hour in range(9, 9 + CONTESTED):
            wins.append(await book(platform, who, units[0], contested, hour, confirm=False))

    started = time.perf_counter()
    await asyncio.gather(*(racer(i, who) for i, who in enumerate(crowd)))
    contended_rate = len(wins) / (time.perf_counter() - started)
    return free_rate, contended_rate, sum(wins)


async def run(backend: str, url: str, args: argparse.Namespace) -> None:
    platform = create_platform(settings(url))
    try:
        await platform.refresh(force=True)
        await service.apply_manifests(platform, load_manifests(MANIFESTS), [str(p) for p in MANIFESTS])
        print(f"{backend}:")
        gym, units = await facility(platform)
        timings = await bench_availability(platform, args, gym, units)
        p50 = statistics.median(timings)
        p95 = statistics.quantiles(timings, n=20)[18]
        verdict = "pass" if p50 < GOAL_MS else "miss"
        print(
            f"  availability: p50 {p50:.1f} ms, p95 {p95:.1f} ms over {len(timings)} requests (goal < {GOAL_MS:.0f} ms: {verdict})"
        )
        free_rate, contended_rate, won = await bench_bookings(platform, args, units)
        print(f"  bookings (hold + confirm, {args.clients} clients, distinct slots): {free_rate:.0f}/s")
        print(f"  contended ({args.clients} clients x {CONTESTED} slots of one unit): {contended_rate:.0f} answers/s, "
              f"{won} bookings stand (one per slot: {won == CONTESTED})")  # fmt: skip
    finally:
        await platform.close()


def main(args: argparse.Namespace) -> None:
    for name in ("sqlite", "postgres"):
        if args.backend not in (name, "both"):
            continue
        backend = SQLiteBackend() if name == "sqlite" else PostgresBackend(args.postgres_admin_url)
        try:
            asyncio.run(run(name, backend.platform_database(), args))
        finally:
            backend.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--reads", type=int, default=200)
    parser.add_argument("--clients", type=int, default=12)
    parser.add_argument("--per-client", type=int, default=20)
    parser.add_argument(
        "--postgres-admin-url",
        default=os.environ.get("TSUNAGU_BENCH_POSTGRES_URL", DEFAULT_ADMIN_URL),
    )
    main(parser.parse_args())
