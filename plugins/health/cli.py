"""``tsunagu health``: export upcoming sessions as open data, print participation statistics."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import click
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncSession

from core.cli.runtime import console, json_option, municipality_option, print_json, run_for_plugin
from core.exceptions import InvalidInput
from core.platform import Platform
from core.tenancy.registry import Municipality
from plugins.health.schemas import Stats
from plugins.health.services import context_for, events, outputs


def _date(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"--{option}: expected a date such as 2026-04-01, got {value!r}") from None


@click.command("export-events")
@municipality_option
@click.option(
    "--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Write here (UTF-8 with BOM)."
)
def export_events(slug: str, output: Path | None) -> None:
    """Write upcoming sessions as a 自治体標準オープンデータセット イベント一覧 CSV."""

    async def work(platform: Platform, municipality: Municipality, session: AsyncSession) -> str:
        ctx = context_for(platform, municipality)
        return outputs.to_csv(outputs.event_rows(await events.upcoming(session, ctx), ctx))

    text = run_for_plugin(slug, "health", work)
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_bytes(("\ufeff" + text).encode("utf-8"))
        click.echo(f"wrote {output}")


@click.command("stats")
@municipality_option
@click.option("--first", required=True, help="First date (ISO), inclusive.")
@click.option("--last", required=True, help="Last date (ISO), inclusive.")
@json_option
def stats(slug: str, first: str, last: str, as_json: bool) -> None:
    """Attendance by age band and district, and measure changes by age band; small cells suppressed."""
    start, end = _date(first, "first"), _date(last, "last")

    async def work(platform: Platform, municipality: Municipality, session: AsyncSession) -> Stats:
        return await outputs.stats(session, context_for(platform, municipality), start, end)

    result = run_for_plugin(slug, "health", work)
    if as_json:
        print_json(result)
        return
    table = Table("age band", "district", "people", "attendances")
    for cell in result.cells:
        shown = (
            (str(cell.people), str(cell.attendances))
            if cell.people is not None
            else ("<" + str(result.min_cell), "-")
        )
        table.add_row(cell.age_band, cell.district, *shown)
    console.print(table)
    if result.outcomes:
        outcomes = Table("age band", "measure", "people", "mean change")
        for o in result.outcomes:
            suppressed = o.people is None
            outcomes.add_row(
                o.age_band,
                o.kind,
                f"<{result.min_cell}" if suppressed else str(o.people),
                "-" if suppressed else f"{o.mean_change:+.1f}",
            )
        console.print(outcomes)


COMMANDS = [export_events, stats]
