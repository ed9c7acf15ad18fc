"""``tsunagu opinion_box``: staff list and answer opinions."""

from __future__ import annotations

import click
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncSession

from core.cli.runtime import console, json_option, municipality_option, print_json, run_for_plugin
from core.platform import Platform
from core.tenancy.registry import Municipality
from tsunagu_opinion_box import services


@click.command("list")
@municipality_option
@json_option
def list_(slug: str, as_json: bool) -> None:
    """Opinions received by the municipality, oldest first."""

    async def work(
        _platform: Platform, _municipality: Municipality, session: AsyncSession
    ) -> list[dict[str, str]]:
        return [
            {
                "receipt": o.receipt,
                "status": o.status,
                "topic": o.topic,
                "body": o.body,
                "reply_due": o.reply_due.isoformat(),
            }
            for o in await services.list_all(session)
        ]

    rows = run_for_plugin(slug, "opinion_box", work)
    if as_json:
        print_json(rows)
        return
    table = Table("receipt", "status", "topic", "reply due")
    for r in rows:
        table.add_row(r["receipt"], r["status"], r["topic"], r["reply_due"])
    console.print(table)


@click.command()
@click.argument("receipt")
@municipality_option
def answer(receipt: str, slug: str) -> None:
    """Mark an opinion answered."""

    async def work(_platform: Platform, _municipality: Municipality, session: AsyncSession) -> None:
        await services.answer(session, receipt)

    run_for_plugin(slug, "opinion_box", work)
    click.echo(f"answered {receipt}")


COMMANDS = [list_, answer]
