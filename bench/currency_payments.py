"""Payments per second through the currency ledger's service on PostgreSQL, without HTTP.

A fixed number of payments (``--payments``, default 2000) is made by ``--clients`` concurrent clients (asyncio
tasks in this process), each a resident paying one of ``--shops`` shops with the shop's fixed code, through the
service a ``POST /currency/payments`` calls (code check, limits, account locks, lots drawn oldest first,
entries, audit event), one transaction each. Afterwards the ledger must verify. Prints payments per second.
The payment through the whole app, against a reference transfer, is ``bench/run``'s ``currency_payment``.

    .venv/bin/python bench/currency_payments.py
    .venv/bin/python bench/currency_payments.py --payments 5000 --clients 16 --shops 20

The database is made as ``bench/run`` makes it (:mod:`bench.databases`): through ``--postgres-admin-url`` (a
superuser; default ``postgresql://postgres@127.0.0.1:5432/postgres``, or ``TSUNAGU_BENCH_POSTGRES_URL``), owned by
and used as the unprivileged role ``tsunagu_app`` (row-level security on, as in production), dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.databases import SECRET, PostgresBackend  # noqa: E402
from bench.options import DEFAULT_ADMIN_URL  # noqa: E402
from core.identity.models import Account, RoleGrant  # noqa: E402
from core.platform import Platform, create_platform  # noqa: E402
from core.settings import Settings  # noqa: E402
from core.tenancy import service  # noqa: E402
from core.tenancy.manifest import load_manifests  # noqa: E402
from plugins.currency import services  # noqa: E402

MANIFESTS = sorted((ROOT / "municipalities").glob("*.toml"))
TOWN = "miki"
AMOUNT = 10


def settings(url: str) -> Settings:
    return Settings(database_url=url, environment="test", log_level="warning", secret_key=SECRET)


async def prepare(
    platform: Platform, clients: int, shops: int, per_client: int
) -> tuple[list[uuid.UUID], list[str]]:
    """Residents with enough value, shops, and each shop's fixed code."""
    await platform.refresh(force=True)
    await service.apply_manifests(platform, load_manifests(MANIFESTS), [str(p) for p in MANIFESTS])
    municipality = platform.municipality(TOWN)
    config = platform.plugin_settings(municipality, "currency").currencies[0]
    people = []
    async with platform.sessions.platform() as session:
        for i in range(clients):
            account = Account(email=f"bench-{i}-{uuid.uuid4().hex[:6]}@example.jp", display_name="bench")
            session.add(account)
            people.append(account)
    async with platform.sessions.tenant(municipality.id) as session:
        for person in people:
            session.add(RoleGrant(account_id=person.id, role="resident"))
    key = services.code_key(platform.settings)
    codes = []
    settings_ = platform.plugin_settings(municipality, "currency")
    async with platform.sessions.tenant(municipality.id) as session:
        for i in range(shops):
            shop = await services.register_merchant(
                session, settings_, name=f"店{i}", category="food", actor="cli"
            )
            codes.append(
                services.make_code(key, municipality=TOWN, merchant_id=shop.id, currency=config.code)
            )
        for person in people:
            await services.issue(
                session,
                settings_,
                person_id=person.id,
                currency=config.code,
                purchased=AMOUNT * per_client,
                actor="cli",
            )
    return [p.id for p in people], codes


async def run_service(platform: Platform, people: list[uuid.UUID], codes: list[str], per_client: int) -> None:
    municipality = platform.municipality(TOWN)
    settings_ = platform.plugin_settings(municipality, "currency")
    key = services.code_key(platform.settings)
    tz = ZoneInfo(municipality.timezone)

    async def client(index: int, person: uuid.UUID) -> None:
        for n in range(per_client):
            async with platform.sessions.tenant(municipality.id) as session:
                await services.pay(
                    session,
                    settings_,
                    key=key,
                    municipality=TOWN,
                    tz=tz,
                    payer_id=person,
                    code=codes[(index + n) % len(codes)],
                    amount=AMOUNT,
                    actor=f"account:{person}",
                )

    await asyncio.gather(*(client(i, p) for i, p in enumerate(people)))


async def bench(url: str, args: argparse.Namespace) -> None:
    platform = create_platform(settings(url))
    try:
        per_client = args.payments // args.clients
        people, codes = await prepare(platform, args.clients, args.shops, per_client)
        started = time.perf_counter()
        await run_service(platform, people, codes, per_client)
        elapsed = time.perf_counter() - started
        async with platform.sessions.tenant(platform.municipality(TOWN).id) as session:
            report = await services.verify(session)
        if not report.ok:
            raise SystemExit(f"the ledger does not verify: {report.problem}")
        made = per_client * args.clients
        print(
            f"{made} payments ({args.clients} clients, {args.shops} shops) in {elapsed:.2f} s: "
            f"{made / elapsed:.0f} payments/s; the ledger verifies ({report.transfers} transfers)"
        )
    finally:
        await platform.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--payments", type=int, default=2000, help="payments in all (default 2000)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent payers (default 8)")
    parser.add_argument("--shops", type=int, default=10, help="shops paid in turn (default 10)")
    parser.add_argument(
        "--postgres-admin-url", default=os.environ.get("TSUNAGU_BENCH_POSTGRES_URL", DEFAULT_ADMIN_URL)
    )
    args = parser.parse_args()
    backend = PostgresBackend(args.postgres_admin_url)
    try:
        asyncio.run(bench(backend.platform_database(), args))
    finally:
        backend.close()


if __name__ == "__main__":
    main()
