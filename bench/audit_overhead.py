"""What auditing costs a writer: throughput of the same fixed work with and without ``record()``.

N clients (asyncio tasks in this process, spread over the eight municipalities) each make M writes; with
auditing on, each write's transaction also records an audit event, and the background sealer runs as it does
in the app (one per process). Three shapes of write:

- ``transaction``: a bare tenant-session transaction inserting one notice -- the least work a write can be, so
  the largest share auditing can take;
- ``request``: ``POST /m/<slug>/bench_writes/`` through the whole app (binding, routing, dependency injection,
  a tenant session, JSON in and out) inserting one notice -- what a plugin's write looks like;
- ``booking``: one transaction that holds a distinct free slot through the booking services and confirms it
  (the workflow's start and transition, the occupancy row under the no-overlap guard, the confirmation
  notification), as ``bench/booking.py`` books, the booking rules skipped as there. Its audit events (two
  transitions and the queued notification) come from the code under test, so for the runs without auditing
  ``record`` is replaced by a no-op in every module that imported it, and restored afterwards; each such run
  must leave the log as it found it.

Short runs alternate off/on (then on/off, so drift cancels) for R rounds and their times are summed; the sealing
still pending after the last audited run is timed and counted as auditing's. Afterwards every municipality's
log must verify.

    .venv/bin/python bench/audit_overhead.py                       # both shapes, SQLite and PostgreSQL
    .venv/bin/python bench/audit_overhead.py --backend postgres --shape transaction --clients 8 --rounds 20
    .venv/bin/python bench/audit_overhead.py --shape booking --rounds 30

PostgreSQL: a scratch database is created through ``--postgres-admin-url`` (a superuser; default
``postgresql://postgres@127.0.0.1:5432/postgres``), owned by and used as the unprivileged role ``tsunagu_app``
(row-level security on, as in production), and dropped at the end. SQLite: a file in a temporary folder.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform as host
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, nullcontext
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402
import httpx  # noqa: E402
from litestar import post  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

import core.audit.recording  # noqa: E402
from bench.scenarios import _booking  # noqa: E402
from core import Plugin, PluginMeta, Title, hookimpl  # noqa: E402
from core.app import create_app  # noqa: E402
from core.audit import AuditEvent, Sealer, record, seal, verify  # noqa: E402
from core.audit.sealing import unsealed  # noqa: E402
from core.db import migrate, utcnow  # noqa: E402
from core.http.dependencies import DbSession  # noqa: E402
from core.identity.models import Account, RoleGrant  # noqa: E402
from core.identity.principal import Principal  # noqa: E402
from core.platform import Platform, create_platform  # noqa: E402
from core.settings import Settings  # noqa: E402
from core.tenancy import service  # noqa: E402
from core.tenancy.manifest import load_manifests  # noqa: E402
from core.tenancy.registry import Municipality  # noqa: E402
from plugins.booking.schemas import ReservationCreate  # noqa: E402
from plugins.booking.services import context_for, reservations  # noqa: E402
from plugins.notices.models import Notice  # noqa: E402
from tests.asgi import lifespan_client  # noqa: E402

MANIFESTS = sorted((ROOT / "municipalities").glob("*.toml"))
APP_ROLE = "tsunagu_app"
SECRET = "bench-secret-" + "x" * 40
AUDITING = {"on": False}
"""Whether the bench route records (switched between runs)."""


def settings(url: str) -> Settings:
    return Settings(database_url=url, environment="test", log_level="warning", secret_key=SECRET)


def write(session: Any, index: int, audited: bool) -> uuid.UUID:
    """The fixed work of one write: a notice, and with auditing its event."""
    notice = Notice(
        id=uuid.uuid4(), category="general", title=f"bench {index}", body="b", published_at=utcnow()
    )
    session.add(notice)
    if audited:
        record(
            session,
            actor="job:bench",
            action="notices.posted",
            target_type="notice",
            target_id=notice.id,
            payload={"category": "general"},
        )
    return notice.id


@post("/", summary="Benchmark: insert one notice")
async def bench_write(db_session: DbSession, data: dict[str, int]) -> dict[str, str]:
    return {"id": str(write(db_session, data["index"], AUDITING["on"]))}


class BenchWrites(Plugin):
    meta = PluginMeta(name="bench_writes", version="0.1.0", title=Title(ja="ベンチ", en="Bench writes"))

    @hookimpl
    def register_routes(self) -> list[Any]:
        return [bench_write]


class Shape:
    """Runs M writes for each of N clients, audited or not."""

    async def start(self, platform: Platform) -> None: ...

    async def stop(self) -> None: ...

    def client(self, slug: str, municipality_id: int) -> Callable[[int, bool], Awaitable[None]]:
        raise NotImplementedError

    def unaudited(self) -> Any:
        """Entered around each run without auditing: nothing to do when the shape's own code decides."""
        return nullcontext()


class Transactions(Shape):
    def client(self, slug: str, municipality_id: int) -> Callable[[int, bool], Awaitable[None]]:
        async def one(index: int, audited: bool) -> None:
            async with self.platform.sessions.tenant(municipality_id) as session:
                write(session, index, audited)

        return one

    async def start(self, platform: Platform) -> None:
        self.platform = platform


class Requests(Shape):
    async def start(self, platform: Platform) -> None:
        for slug in platform.snapshot.by_slug:
            await service.set_plugin_enabled(platform, slug, "bench_writes", True)
        self._client = lifespan_client(create_app(platform=platform, run_jobs_in_process=False))
        self.http: httpx.AsyncClient = await self._client.__aenter__()
        self.platform = platform
        await platform.audit_sealer.stop()  # type: ignore[union-attr]  # the bench runs it only when auditing
        platform.audit_sealer = None

    async def stop(self) -> None:
        await self._client.__aexit__(None, None, None)

    def client(self, slug: str, municipality_id: int) -> Callable[[int, bool], Awaitable[None]]:
        async def one(index: int, audited: bool) -> None:
            AUDITING["on"] = audited
            response = await self.http.post(f"/m/{slug}/bench_writes/", json={"index": index})
            assert response.status_code == 201, response.text

        return one


def _no_record(*args: Any, **kwargs: Any) -> None:
    return None


def importers_of_record() -> list[Any]:
    """Every loaded module of the platform holding ``core.audit.record`` under some name (``record``,
    ``audit_record``...), its definition included."""
    original = core.audit.recording.record
    return [
        module
        for name, module in sorted(sys.modules.items())
        if name.split(".")[0] in ("core", "plugins")
        and any(value is original for value in list(vars(module).values()))
    ]


class Bookings(Shape):
    """Each write holds (and confirms) the next free slot of its municipality's gym: every slot distinct."""

    def __init__(self, args: argparse.Namespace) -> None:
        per_town = -(-args.clients // 8)
        self.wanted = per_town * (2 * args.rounds * args.writes + 2 * 20)  # the runs and the two warm-ups
        self.confirm = not args.hold_only

    async def start(self, platform: Platform) -> None:
        self.platform = platform
        self.slots: dict[int, Iterator[tuple[uuid.UUID, Any]]] = {}
        self.people: dict[int, Principal] = {}
        units = -(-self.wanted // _booking.SLOTS_PER_UNIT)
        for municipality in platform.snapshot.by_slug.values():
            await service.set_plugin_enabled(platform, municipality.slug, "booking", True)
        for municipality in platform.snapshot.by_slug.values():
            _, courts = await _booking.platform_facility(platform, municipality, units)
            self.slots[municipality.id] = _booking.free_slots(courts, _booking.bookable_days())
            self.people[municipality.id] = await self._resident(municipality)
        self.patched = importers_of_record()
        names = ", ".join(m.__name__ for m in self.patched)
        print(f"# booking: without auditing, record is a no-op in {names}", flush=True)

    async def _resident(self, municipality: Municipality) -> Principal:
        account = Account(email=f"bench-{uuid.uuid4().hex[:12]}@example.jp", display_name="bench",
                          residence_municipality_id=municipality.id)  # fmt: skip
        async with self.platform.sessions.platform() as session:
            session.add(account)
        async with self.platform.sessions.tenant(municipality.id) as session:
            session.add(RoleGrant(account_id=account.id, role="resident"))
        roles = frozenset({"resident"})
        return Principal(kind="session", account_id=account.id, municipality_id=municipality.id, roles=roles)

    def client(self, slug: str, municipality_id: int) -> Callable[[int, bool], Awaitable[None]]:
        municipality = self.platform.snapshot.by_id[municipality_id]
        ctx = context_for(self.platform, municipality)
        who = self.people[municipality_id]
        slots = self.slots[municipality_id]

        async def one(index: int, audited: bool) -> None:
            unit, start = next(slots)
            data = ReservationCreate(unit_id=unit, starts_at=start, ends_at=start + timedelta(hours=1))
            async with self.platform.sessions.tenant(municipality_id) as session:
                held = await reservations.book(
                    session, ctx, data, account_id=who.account_id, actor=who, check_rules=False
                )
                if self.confirm:
                    await reservations.act(session, held.id, "confirm", actor=who, account_id=who.account_id)

        return one

    async def _events(self) -> int:
        total = 0
        for municipality_id in self.platform.snapshot.by_id:
            async with self.platform.sessions.tenant(municipality_id) as session:
                total += await session.scalar(select(func.count()).select_from(AuditEvent)) or 0
        return total

    @asynccontextmanager
    async def unaudited(self) -> AsyncIterator[None]:
        before = await self._events()
        originals = [(module, vars(module).copy()) for module in self.patched]
        original = core.audit.recording.record
        try:
            for module, names in originals:
                for name, value in names.items():
                    if value is original:
                        setattr(module, name, _no_record)
            yield
        finally:
            for module, names in originals:
                for name, value in names.items():
                    if value is original:
                        setattr(module, name, original)
        assert await self._events() == before, "a run without auditing wrote audit events"


async def run_once(
    platform: Platform, shape: Shape, clients: int, writes: int, sealer: Sealer | None
) -> float:
    """Seconds for ``clients`` x ``writes``, audited when a ``sealer`` is given, which then runs meanwhile."""
    municipalities = sorted(platform.snapshot.by_id.values(), key=lambda m: m.id)
    workers = [
        shape.client(m.slug, m.id) for m in (municipalities[i % len(municipalities)] for i in range(clients))
    ]

    async def loop(one: Callable[[int, bool], Awaitable[None]]) -> None:
        for index in range(writes):
            await one(index, sealer is not None)

    if sealer:
        sealer.start()
    started = time.perf_counter()
    try:
        await asyncio.gather(*[loop(one) for one in workers])
        return time.perf_counter() - started
    finally:
        if sealer:
            await sealer.stop()


async def backlog(platform: Platform) -> int:
    total = 0
    for municipality_id in platform.snapshot.by_id:
        async with platform.sessions.tenant(municipality_id) as session:
            query = select(func.count()).select_from(AuditEvent).where(unsealed(municipality_id))
            total += await session.scalar(query) or 0
    return total


async def bench(url: str, shape: Shape, args: argparse.Namespace) -> dict[str, float]:
    platform = create_platform(settings(url), extra_plugins=[BenchWrites()])
    try:
        await platform.refresh(force=True)
        await service.apply_manifests(platform, load_manifests(MANIFESTS), [str(p) for p in MANIFESTS])
        await shape.start(platform)
        sealer = Sealer(platform)
        for audited in (True, False):  # warm up both paths (connections, statement caches)
            async with nullcontext() if audited else shape.unaudited():
                await run_once(platform, shape, args.clients, 20, sealer if audited else None)
        spent = {False: 0.0, True: 0.0}
        left = 0
        for round_ in range(args.rounds):
            for audited in (False, True) if round_ % 2 == 0 else (True, False):
                runner = sealer if audited else None
                async with nullcontext() if audited else shape.unaudited():
                    spent[audited] += await run_once(platform, shape, args.clients, args.writes, runner)
                if audited:
                    left = max(left, await backlog(platform))
        started = time.perf_counter()
        for municipality_id in sorted(platform.snapshot.by_id):
            await seal(platform, municipality_id)
        spent[True] += time.perf_counter() - started
        await shape.stop()
        started = time.perf_counter()
        reports = [await verify(platform, m) for m in sorted(platform.snapshot.by_id)]
        verify_seconds = time.perf_counter() - started
        assert all(r.ok for r in reports), [r.problems[:1] for r in reports if not r.ok]
        work = args.rounds * args.clients * args.writes
        return {
            "off": work / spent[False],
            "on": work / spent[True],
            "ratio": spent[False] / spent[True],
            "backlog": left,
            "entries": sum(r.entries for r in reports),
            "verify_seconds": verify_seconds,
        }
    finally:
        await platform.close()


def sqlite_url() -> str:
    folder = tempfile.mkdtemp(prefix="tsunagu-bench-")
    return f"sqlite+aiosqlite:///{folder}/bench.sqlite3"


async def postgres_database(admin_url: str, name: str, create: bool) -> str:
    conn = await asyncpg.connect(admin_url, timeout=5)
    try:
        if create:
            if not await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", APP_ROLE):
                await conn.execute(
                    f"CREATE ROLE {APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE"
                )
            await conn.execute(f'CREATE DATABASE "{name}" OWNER {APP_ROLE}')
        else:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()
    server = admin_url.rpartition("/")[0].split("@", 1)[-1]
    return f"postgresql+asyncpg://{APP_ROLE}@{server}/{name}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument(
        "--shape",
        choices=["transaction", "request", "booking", "both", "all"],
        default="both",
        help="both: transaction and request; all: the three",
    )
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (default 8)")
    parser.add_argument("--writes", type=int, default=50, help="writes per client and run (default 50)")
    parser.add_argument("--rounds", type=int, default=20, help="off/on pairs of runs (default 20)")
    parser.add_argument(
        "--hold-only", action="store_true", help="booking: hold the slots, do not confirm them"
    )
    parser.add_argument(
        "--postgres-admin-url",
        default=os.environ.get("TSUNAGU_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
    )
    args = parser.parse_args()
    print(
        f"# {os.cpu_count()} CPU(s), {host.machine()}, {host.system()} {host.release()}, Python "
        f"{host.python_version()}; {args.clients} clients x {args.writes} writes x {args.rounds} rounds, each way"
    )
    print(
        "backend    shape         writes/s off   writes/s on   on/off   max unsealed after a run   verify (all 8)"
    )
    for backend in ["sqlite", "postgres"] if args.backend == "both" else [args.backend]:
        shapes = {"both": ["transaction", "request"], "all": ["transaction", "request", "booking"]}
        for shape in shapes.get(args.shape, [args.shape]):
            name = f"tsunagu_bench_{os.getpid()}"
            admin = args.postgres_admin_url
            url = sqlite_url() if backend == "sqlite" else asyncio.run(postgres_database(admin, name, True))
            try:
                migrate.upgrade(create_platform(settings(url)), "heads")
                runner = {"transaction": Transactions, "request": Requests}.get(shape)
                result = asyncio.run(bench(url, runner() if runner else Bookings(args), args))
            finally:
                if backend == "postgres":
                    asyncio.run(postgres_database(admin, name, False))
            print(
                f"{backend:<10} {shape:<12} {result['off']:>13.0f} {result['on']:>13.0f} {result['ratio']:>8.2f} "
                f"{result['backlog']:>26.0f}   {result['entries']:.0f} entries in {result['verify_seconds']:.2f} s",
                flush=True,
            )


if __name__ == "__main__":
    main()
