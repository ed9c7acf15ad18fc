"""``tsunagu currency``: verify the ledger, issue value, manage shops, settle, correct, and report."""

from __future__ import annotations

import sys
import uuid
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

import click
import msgspec
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncSession

from core.cli.runtime import console, json_option, municipality_option, print_json, run_async, run_for_plugin
from core.db import utcnow
from core.exceptions import InvalidInput
from core.identity.accounts import find_account as find_person
from core.platform import Platform
from core.tenancy.registry import Municipality
from plugins.currency import services
from plugins.currency.config import CurrencySettings
from plugins.currency.services._errors import LedgerDoesNotVerify

ACTOR = "cli"
currency_option = click.option(
    "--currency", "-c", "currency", metavar="CODE", help="Currency code (e.g. MIKI)."
)


def _settings(platform: Platform, municipality: Municipality) -> CurrencySettings:
    return platform.plugin_settings(municipality, "currency")


def _code(settings: CurrencySettings, currency: str | None) -> str:
    return services.currency_of(settings, currency or settings.currencies[0].code).code


def _date(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"--{option}: expected a date such as 2026-03-31, got {value!r}") from None


def _emit(data: Any, as_json: bool) -> None:
    if as_json:
        print_json(data)
        return
    table = Table("field", "value")
    for key, value in msgspec.to_builtins(data).items():
        table.add_row(key, str(value))
    console.print(table)


@click.command()
@municipality_option
@json_option
def verify(slug: str, as_json: bool) -> None:
    """Check the ledger: transfers balance, balances match entries, issued − redeemed − expired = held.

    Exits 1 with the first problem when not.
    """

    async def work(_p: Platform, _m: Municipality, session: AsyncSession) -> services.Report:
        return await services.verify(session)

    report = run_for_plugin(slug, "currency", work)
    if as_json:
        print_json(report)
    elif report.ok:
        click.echo(f"ok: {report.transfers} transfers, {report.accounts} accounts")
        for row in report.currencies:
            click.echo(
                f"{row.currency}: issued {row.issued}, redeemed {row.redeemed}, expired {row.expired}, held {row.held}"
            )
    if not report.ok:
        raise LedgerDoesNotVerify(f"{slug}: the currency ledger does not verify: {report.problem}")


@click.command()
@municipality_option
@click.option("--account", "reference", required=True, help="The person: account id or email.")
@currency_option
@click.option("--purchased", type=int, default=0, show_default=True, help="Purchased value.")
@click.option("--bonus", type=int, default=0, show_default=True, help="Bonus (premium) value.")
def issue(slug: str, reference: str, currency: str | None, purchased: int, bonus: int) -> None:
    """Top up a resident: purchased and bonus value, kept in separate lots."""

    async def main(platform: Platform) -> str:
        person = await find_person(platform, reference)
        municipality = platform.municipality(slug)
        settings = _settings(platform, municipality)
        async with platform.sessions.tenant(municipality.id) as session:
            out = await services.issue(
                session,
                settings,
                person_id=person.id,
                currency=_code(settings, currency),
                purchased=purchased,
                bonus=bonus,
                actor=ACTOR,
            )
        return f"issued {out.amount} {out.currency}: transfer {out.id}, balance {out.balance}"

    click.echo(run_async(main))


@click.command("merchants")
@municipality_option
@json_option
def merchants(slug: str, as_json: bool) -> None:
    """Every shop of the municipality, closed ones included."""

    async def work(_p: Platform, _m: Municipality, session: AsyncSession) -> list[dict[str, Any]]:
        return [
            {"id": str(m.id), "name": m.name, "category": m.category, "closed": m.closed_at is not None}
            for m in await services.list_merchants(session)
        ]

    rows = run_for_plugin(slug, "currency", work)
    if as_json:
        print_json(rows)
        return
    table = Table("id", "name", "category", "closed")
    for row in rows:
        table.add_row(row["id"], row["name"], row["category"], "yes" if row["closed"] else "")
    console.print(table)


@click.command("add-merchant")
@municipality_option
@click.option("--name", required=True)
@click.option("--category", required=True)
def add_merchant(slug: str, name: str, category: str) -> None:
    """Register a shop; prints its id."""

    async def work(platform: Platform, municipality: Municipality, session: AsyncSession) -> str:
        merchant = await services.register_merchant(
            session, _settings(platform, municipality), name=name, category=category, actor=ACTOR
        )
        return str(merchant.id)

    click.echo(run_for_plugin(slug, "currency", work))


@click.command("add-member")
@municipality_option
@click.option("--merchant", "merchant_id", type=click.UUID, required=True)
@click.option("--account", "reference", required=True, help="The person: account id or email.")
def add_member(slug: str, merchant_id: uuid.UUID, reference: str) -> None:
    """Let a person work a shop's till (take payments, refund, read its statement)."""

    async def main(platform: Platform) -> bool:
        person = await find_person(platform, reference)
        municipality = platform.municipality(slug)
        platform.require_enabled(municipality, "currency")
        async with platform.sessions.tenant(municipality.id) as session:
            return await services.add_member(session, merchant_id, person.id, actor=ACTOR)

    click.echo("added" if run_async(main) else "already a member")


@click.command()
@municipality_option
@click.option("--merchant", "merchant_id", type=click.UUID, required=True)
@currency_option
@click.option("--amount", type=int, help="Amount to pay out; the whole balance when omitted.")
def redeem(slug: str, merchant_id: uuid.UUID, currency: str | None, amount: int | None) -> None:
    """Settle with a shop: take its value back to the issuer (the town pays it out in yen)."""

    async def work(platform: Platform, municipality: Municipality, session: AsyncSession) -> str:
        settings = _settings(platform, municipality)
        out = await services.redeem(
            session,
            settings,
            merchant_id=merchant_id,
            currency=_code(settings, currency),
            amount=amount,
            actor=ACTOR,
        )
        return f"redeemed {out.amount} {out.currency}: transfer {out.id}, shop balance {out.balance}"

    click.echo(run_for_plugin(slug, "currency", work))


@click.command()
@click.argument("transfer_id", type=click.UUID)
@municipality_option
def reverse(transfer_id: uuid.UUID, slug: str) -> None:
    """Correct an issue, award, refund or redemption with a reversing transfer."""

    async def work(_p: Platform, _m: Municipality, session: AsyncSession) -> str:
        out = await services.reverse(session, transfer_id=transfer_id, actor=ACTOR)
        return f"reversed {transfer_id}: transfer {out.id}"

    click.echo(run_for_plugin(slug, "currency", work))


@click.command()
@municipality_option
@currency_option
@click.option("--from", "start", required=True, help="First day, e.g. 2026-11-01.")
@click.option("--to", "end", required=True, help="Last day, included.")
@click.option("--merchant", "merchant_id", type=click.UUID, help="One shop; every shop when omitted.")
@json_option
def statement(
    slug: str, currency: str | None, start: str, end: str, merchant_id: uuid.UUID | None, as_json: bool
) -> None:
    """Settlement statements: what each shop received and is owed over a period."""
    first, last = _date(start, "from"), _date(end, "to")

    async def work(platform: Platform, municipality: Municipality, session: AsyncSession) -> list[Any]:
        settings = _settings(platform, municipality)
        tz = ZoneInfo(municipality.timezone)
        code = _code(settings, currency)
        if merchant_id is not None:
            one = await services.statement(
                session, settings, tz, merchant_id=merchant_id, currency=code, start=first, end=last
            )
            return [one]
        return await services.statements(session, settings, tz, currency=code, start=first, end=last)

    rows = run_for_plugin(slug, "currency", work)
    if as_json:
        print_json(rows)
        return
    table = Table("shop", "opening", "payments", "gross", "fees", "refunded", "redeemed", "closing (owed)")
    for row in rows:
        table.add_row(
            row.merchant_name,
            str(row.opening_balance),
            str(row.payments),
            str(row.gross),
            str(row.fees),
            str(row.refunded),
            str(row.redeemed),
            str(row.closing_balance),
        )
    console.print(table)


@click.command()
@municipality_option
@currency_option
@click.option("--date", "day", required=True, help="A reference date: YYYY-03-31 or YYYY-09-30.")
@json_option
def outstanding(slug: str, currency: str | None, day: str, as_json: bool) -> None:
    """Outstanding value at a legal reference date (基準日, 3/31 and 9/30), at the end of that day."""
    reference_date = _date(day, "date")

    async def work(platform: Platform, municipality: Municipality, session: AsyncSession) -> Any:
        settings = _settings(platform, municipality)
        return await services.outstanding(
            session,
            settings,
            ZoneInfo(municipality.timezone),
            currency=_code(settings, currency),
            reference_date=reference_date,
        )

    _emit(run_for_plugin(slug, "currency", work), as_json)


@click.command()
@municipality_option
def expire(slug: str) -> None:
    """Move value past its expiry to the expiry account now (the daily job does the same)."""

    async def main(platform: Platform) -> tuple[int, int]:
        municipality = platform.municipality(slug)
        platform.require_enabled(municipality, "currency")
        now = utcnow()
        async with platform.sessions.tenant(municipality.id) as session:
            due = await services.due_accounts(session, now)
        moved = 0
        for account_id in due:
            async with platform.sessions.tenant(municipality.id) as session:
                moved += await services.expire_account(session, account_id, now=now, actor=ACTOR)
        return len(due), moved

    wallets, moved = run_async(main)
    click.echo(f"expired {moved} from {wallets} wallets")


@click.command()
@municipality_option
@currency_option
@click.option("--from", "start", required=True, help="First ISO week, e.g. 2026-W01.")
@click.option("--to", "end", required=True, help="Last ISO week, included.")
@click.option("--format", "output", type=click.Choice(["csv", "json"]), default="csv", show_default=True)
def stats(slug: str, currency: str | None, start: str, end: str, output: str) -> None:
    """Purchase statistics per week, small cells suppressed (as analysts get them)."""

    async def work(platform: Platform, municipality: Municipality, session: AsyncSession) -> Any:
        settings = _settings(platform, municipality)
        return await services.weekly_stats(
            session,
            settings,
            ZoneInfo(municipality.timezone),
            currency=_code(settings, currency),
            first=start,
            last=end,
            actor=ACTOR,
        )

    result = run_for_plugin(slug, "currency", work)
    if output == "json":
        print_json(result)
        return
    sys.stdout.write(services.stats_csv(result))


COMMANDS = [
    verify,
    issue,
    merchants,
    add_merchant,
    add_member,
    redeem,
    reverse,
    statement,
    outstanding,
    expire,
    stats,
]
