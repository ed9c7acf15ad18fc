"""``tsunagu outbox status``: what waits to be relayed to the broker, per municipality."""

from __future__ import annotations

import click
from rich.table import Table

from core.cli.runtime import console, json_option, print_json, run_async
from core.outbox.status import outbox_status


@click.group()
def outbox() -> None:
    """The transactional outbox: jobs and events waiting to be relayed to the broker."""


@outbox.command()
@click.option("--municipality", "-m", "slug", metavar="SLUG", help="Only this municipality.")
@json_option
def status(slug: str | None, as_json: bool) -> None:
    """Pending, due, failing and relayed messages, and how long the oldest due one has waited."""
    found = run_async(lambda platform: outbox_status(platform, slug))
    if as_json:
        print_json(found)
        return
    table = Table("municipality", "pending", "due", "failing", "relayed", "oldest due (s)")
    for line in found:
        oldest = "-" if line.oldest_due_seconds is None else f"{line.oldest_due_seconds:.1f}"
        table.add_row(
            line.municipality, *map(str, (line.pending, line.due, line.failing, line.relayed)), oldest
        )
    console.print(table)
