"""``tsunagu booking``: import and export facility lists, list facilities, run and verify lotteries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncSession

from core.cli.runtime import console, json_option, municipality_option, print_json, run_async, run_for_plugin
from core.exceptions import InvalidInput
from core.platform import Platform
from core.tenancy.registry import Municipality
from plugins.booking.services import context_for, facilities, lottery, opendata
from plugins.booking.services._facilities import ImportOutcome
from plugins.booking.services._opendata import ParsedFile

errors = Console(stderr=True, highlight=False, soft_wrap=True)


class _DryRun(Exception):
    """Carries a dry run's outcome out of the transaction, which is then rolled back."""

    def __init__(self, parsed: ParsedFile, outcome: ImportOutcome) -> None:
        super().__init__("dry run")
        self.parsed = parsed
        self.outcome = outcome


@click.command("import-facilities")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@municipality_option
@click.option("--dry-run", is_flag=True, help="Report what would change; write nothing.")
@json_option
def import_facilities(file: Path, slug: str, dry_run: bool, as_json: bool) -> None:
    """Import a facility list: Takamatsu LinkData CSV or a 自治体標準 公共施設一覧 CSV (UTF-8, BOM, CP932)."""
    data = file.read_bytes()

    async def work(
        platform: Platform, municipality: Municipality, session: AsyncSession
    ) -> tuple[ParsedFile, ImportOutcome]:
        parsed = opendata.parse_file(data, stem=file.stem, municipality_code=municipality.code)
        with Progress(
            TextColumn("importing {task.fields[name]}"), BarColumn(), MofNCompleteColumn(), console=errors,
            transient=True, disable=as_json,
        ) as progress:  # fmt: skip
            task = progress.add_task("import", total=len(parsed.records), name=file.name)
            outcome = await facilities.apply_import(
                session, parsed, source=file.name, progress=lambda _: progress.advance(task)
            )
        if dry_run:
            raise _DryRun(parsed, outcome)
        return parsed, outcome

    try:
        parsed, outcome = run_for_plugin(slug, "booking", work)
    except _DryRun as dry:
        parsed, outcome = dry.parsed, dry.outcome
    if as_json:
        print_json(
            {
                "format": parsed.format,
                "dry_run": dry_run,
                "created": outcome.created,
                "updated": outcome.updated,
                "unchanged": outcome.unchanged,
                "skipped": [{"line": s.line, "reason": s.text} for s in parsed.skipped],
                "notes": [{"line": n.line, "note": n.text} for n in parsed.notes],
            }
        )
        return
    for skipped in parsed.skipped:
        click.echo(f"skipped line {skipped.line}: {skipped.text}")
    for note in parsed.notes:
        click.echo(f"note line {note.line}: {note.text}")
    verb = "would create" if dry_run else "created"
    click.echo(
        f"{file.name} ({parsed.format}): {verb} {len(outcome.created)}, "
        f"{'would update' if dry_run else 'updated'} {len(outcome.updated)}, unchanged {outcome.unchanged}, "
        f"skipped {len(parsed.skipped)}" + (" (dry run: nothing written)" if dry_run else "")
    )


@click.command("export-facilities")
@municipality_option
@click.option(
    "--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Write here (UTF-8 with BOM)."
)
def export_facilities(slug: str, output: Path | None) -> None:
    """Write the facility list as a 自治体標準オープンデータセット 公共施設一覧 CSV."""

    async def work(_platform: Platform, municipality: Municipality, session: AsyncSession) -> str:
        rows = opendata.export_rows(
            await facilities.all_facilities(session),
            code=municipality.code,
            municipality_name=municipality.name,
        )
        return opendata.to_csv(rows)

    text = run_for_plugin(slug, "booking", work)
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_bytes(("\ufeff" + text).encode("utf-8"))
        click.echo(f"wrote {output}")


@click.command("list-facilities")
@municipality_option
@json_option
def list_facilities(slug: str, as_json: bool) -> None:
    """The municipality's facilities and how many units each has."""

    async def work(_platform: Platform, _municipality: Municipality, session: AsyncSession) -> list[Any]:
        return await facilities.list_facilities(session)

    rows = run_for_plugin(slug, "booking", work)
    if as_json:
        print_json(rows)
        return
    table = Table("id", "name", "kind", "units", "open")
    for f in rows:
        table.add_row(str(f.id), f.name, f.kind, str(len(f.units)), opendata.weekdays_text(f.hours))
    console.print(table)


@click.group("lottery")
def lottery_group() -> None:
    """抽選: draw a month's slots, verify a draw."""


@lottery_group.command("run")
@municipality_option
@click.option("--month", required=True, metavar="YYYY-MM", help="The month whose slots are drawn.")
def lottery_run(slug: str, month: str) -> None:
    """Draw a month: commit the seed's SHA-256 to the audit log, then draw and publish the seed."""

    async def work(platform: Platform) -> lottery.DrawResult:
        municipality = platform.municipality(slug)
        platform.require_enabled(municipality, "booking")
        ctx = context_for(platform, municipality)
        async with platform.sessions.tenant(municipality.id) as session:
            seed = await lottery.commit_seed(session, ctx, month)
        async with platform.sessions.tenant(municipality.id) as session:
            return await lottery.run_draw(session, ctx, month, seed)

    lottery.parse_month(month)
    result = run_async(work)
    click.echo(f"seed sha256 {result.seed_sha256} (committed before the draw)")
    click.echo(
        f"drew {result.month}: {result.applications} applications, {len(result.winners)} winning wishes"
    )
    click.echo(f"seed {result.seed}")


@lottery_group.command("verify")
@municipality_option
@click.option("--month", required=True, metavar="YYYY-MM")
@click.option("--seed", help="The published seed (default: the one stored with the draw).")
def lottery_verify(slug: str, month: str, seed: str | None) -> None:
    """Re-run a month's draw from what it saw and its published seed; exit 1 if the winners differ."""

    async def work(
        _platform: Platform, _municipality: Municipality, session: AsyncSession
    ) -> lottery.Verification:
        return await lottery.verify_draw(session, month, seed)

    if seed is not None and len(seed) != 64:
        raise InvalidInput(f"--seed: expected 64 hex digits, got {len(seed)} characters")
    result = run_for_plugin(slug, "booking", work)
    if not result.reproduced:
        click.echo(f"error: re-running {month} does not give the stored winners", err=True)
        raise click.exceptions.Exit(1)
    click.echo(f"reproduced {month}: {result.winners} winning wishes (seed sha256 {result.seed_sha256})")


COMMANDS = [import_facilities, export_facilities, list_facilities, lottery_group]
