"""``tsunagu db``: migrations for the core and every loaded plugin."""

from __future__ import annotations

import click

from core.cli.runtime import open_platform
from core.db import migrate


@click.group()
def db() -> None:
    """Database schema (Alembic: one core branch, one branch per plugin)."""


@db.command()
@click.argument("revision", default="heads")
def upgrade(revision: str) -> None:
    """Upgrade to REVISION (default: every head)."""
    migrate.upgrade(open_platform(), revision)
    click.echo(f"upgraded to {revision}")


@db.command()
@click.argument("revision")
def downgrade(revision: str) -> None:
    """Downgrade to REVISION ('base' removes every table)."""
    migrate.downgrade(open_platform(), revision)
    click.echo(f"downgraded to {revision}")


@db.command()
def current() -> None:
    """Print the current revision of each branch."""
    click.echo(migrate.current(open_platform()).rstrip() or "(empty database)")
