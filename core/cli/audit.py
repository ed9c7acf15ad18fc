"""``tsunagu audit``: verify a municipality's audit log, export it, set its retention, purge by that retention."""

from __future__ import annotations

import re
import sys
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import click
import msgspec
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from core.audit import (
    AuditLogTampered,
    PurgeResult,
    Report,
    count_events,
    export_events,
    get_retention,
    seal,
    set_retention,
)
from core.audit import purge as purge_log
from core.audit import verify as verify_log
from core.cli.runtime import json_option, municipality_option, print_json, run_async
from core.exceptions import InvalidInput
from core.platform import Platform

PROGRESS_FROM = 10_000
"""Exports of at least this many events show a progress bar on stderr (when it is a terminal)."""
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_EXPECT = re.compile(r"(?P<seq>\d{1,18}):(?P<mac>[0-9a-f]{8,64})")


def parse_moment(text: str, timezone: str, option: str) -> datetime:
    """A date (midnight at its start, in the municipality's time zone) or an ISO date and time (local time
    unless it has an offset). :raises InvalidInput: anything else, naming ``option``."""
    text = text.strip()
    zone = ZoneInfo(timezone)
    try:
        if _DATE.fullmatch(text):
            return datetime.combine(date.fromisoformat(text), time(0), zone)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            f"{option} must be a date (2026-04-01) or a date and time (2026-04-01T09:00, 2026-04-01T00:00Z), "
            f"got {text!r}"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)


def parse_expect(text: str) -> tuple[int, str]:
    found = _EXPECT.fullmatch(text.strip().lower())
    if found is None:
        raise InvalidInput(
            f"--expect must be SEQ:CHAIN_MAC (at least 8 hex digits), as verify prints it, got {text!r}"
        )
    return int(found["seq"]), found["mac"]


@click.group()
def audit() -> None:
    """The audit log of a municipality: verify, export, retention, purge."""


@audit.command()
@municipality_option
@click.option(
    "--expect",
    metavar="SEQ:MAC",
    help="A head printed by an earlier verify: that entry must still be there, unchanged (catches entries "
    "deleted from the end).",
)
@json_option
def verify(slug: str, expect: str | None, as_json: bool) -> None:
    """Seal, then check the whole log; exit 1 naming the first bad entry."""
    expected = parse_expect(expect) if expect else None

    async def work(platform: Platform) -> Report:
        return await verify_log(platform, platform.municipality(slug).id, expect=expected)

    report = run_async(work)
    if as_json:
        print_json({**msgspec.to_builtins(report), "municipality": slug})
    if not report.ok:
        first = report.problems[0].describe()
        more = (
            f" (and {len(report.problems) - 1} more problem(s); see --json)"
            if len(report.problems) > 1
            else ""
        )
        raise AuditLogTampered(f"{slug}: the audit log does not verify: {first}{more}")
    if as_json:
        return
    if report.head_seq is None:
        click.echo(f"{slug}: the audit log verifies: it is empty")
        return
    purged = f", seq 1 to {report.purged_through} purged" if report.purged_through else ""
    pending = f"; {report.pending} event(s) recorded just now not sealed yet" if report.pending else ""
    click.echo(
        f"{slug}: the audit log verifies: {report.entries} entries (seq {report.first_seq} to {report.head_seq}"
        f"{purged}){pending}"
    )
    click.echo(f"head: {report.head_seq}:{report.head_mac}")


@audit.command()
@municipality_option
@click.option(
    "--since", metavar="WHEN", help="Only events recorded at or after: a date or an ISO date and time."
)
@click.option("--until", metavar="WHEN", help="Only events recorded before: a date or an ISO date and time.")
def export(slug: str, since: str | None, until: str | None) -> None:
    """Print the sealed events as JSON lines, oldest first (with their seq and MACs)."""
    err = Console(stderr=True, highlight=False)

    async def work(platform: Platform) -> int:
        municipality = platform.municipality(slug)
        start = parse_moment(since, municipality.timezone, "--since") if since else None
        end = parse_moment(until, municipality.timezone, "--until") if until else None
        await seal(platform, municipality.id)
        total = (
            await count_events(platform, municipality.id, since=start, until=end) if err.is_terminal else 0
        )
        columns = (TextColumn("exporting"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        written = 0
        with Progress(*columns, console=err, disable=total < PROGRESS_FROM) as progress:
            task = progress.add_task("export", total=total)
            async for event in export_events(
                platform, municipality.id, since=start, until=end, seal_first=False
            ):
                sys.stdout.write(msgspec.json.encode(event).decode() + "\n")
                written += 1
                if written % 500 == 0:
                    progress.update(task, completed=written)
        return written

    written = run_async(work)
    sys.stdout.flush()
    click.echo(f"{slug}: exported {written} audit event(s)", err=True)


@audit.command()
@municipality_option
@click.option(
    "--days", type=int, metavar="N", help="Keep the audit log N days: older entries may then be purged."
)
@click.option("--off", is_flag=True, help="Keep the audit log forever (the default).")
@json_option
def retention(slug: str, days: int | None, off: bool, as_json: bool) -> None:
    """Show or set how long the municipality keeps its audit log. Nothing is deleted until `audit purge`."""
    if days is not None and off:
        raise click.UsageError("give --days N or --off, not both")

    async def work(platform: Platform) -> tuple[int | None, int | None, bool]:
        municipality = platform.municipality(slug)
        if days is None and not off:
            current = await get_retention(platform, municipality)
            return current, current, False
        before, after = await set_retention(platform, municipality, None if off else days)
        return before, after, True

    before, after, changing = run_async(work)
    if as_json:
        print_json({"municipality": slug, "retention_days": after})
        return
    described = "forever (no retention set)" if after is None else f"for {after} days"
    if not changing:
        click.echo(f"{slug} keeps its audit log {described}")
    elif before == after:
        click.echo(f"{slug} already keeps its audit log {described}")
    else:
        was = "forever" if before is None else f"{before} days"
        click.echo(f"{slug} now keeps its audit log {described} (was: {was})")


@audit.command()
@municipality_option
@click.option(
    "--before", required=True, metavar="WHEN", help="Purge entries recorded before this date (or time)."
)
@json_option
def purge(slug: str, before: str, as_json: bool) -> None:
    """Remove entries older than the retention allows (verifies first; only with a retention set)."""

    async def work(platform: Platform) -> PurgeResult:
        municipality = platform.municipality(slug)
        cutoff = parse_moment(before, municipality.timezone, "--before")
        return await purge_log(platform, municipality, cutoff)

    result = run_async(work)
    if as_json:
        print_json({**msgspec.to_builtins(result), "municipality": slug})
    elif result.events == 0 and result.through_seq < result.from_seq:
        click.echo(f"{slug}: no audit entries recorded before {before}: nothing purged")
    else:
        click.echo(
            f"{slug}: purged {result.events} audit event(s) (seq {result.from_seq} to {result.through_seq}); "
            f"the log continues from anchor {result.through_seq}:{result.anchor_chain_mac[:16]}"
        )
