"""``tsunagu role``: which roles hold which permissions in a municipality, and giving roles more than the defaults."""

from __future__ import annotations

import click
from rich.table import Table

from core.cli.runtime import console, json_option, municipality_option, print_json, run_async
from core.identity import accounts
from core.platform import Platform


@click.group()
def role() -> None:
    """Permissions per role in each municipality: the plugins' defaults and the municipality's grants."""


@role.command("list")
@municipality_option
@json_option
def list_(slug: str, as_json: bool) -> None:
    """Every declared permission and the roles holding it in the municipality (* marks a grant)."""

    async def work(platform: Platform) -> list[accounts.PermissionHolders]:
        return await accounts.permission_holders(platform, platform.municipality(slug))

    rows = run_async(work)
    if as_json:
        print_json(rows)
        return
    table = Table("permission", "roles", "scope", "description")
    for row in rows:
        roles = [f"{r}*" if r in row.granted_roles else r for r in row.roles]
        table.add_row(row.permission, ", ".join(roles) or "-", row.scope or "-", row.description)
    console.print(table)


@role.command()
@click.argument("role_name", metavar="ROLE")
@click.argument("permission")
@municipality_option
def grant(role_name: str, permission: str, slug: str) -> None:
    """Give ROLE the PERMISSION in one municipality (every process sees it within a second)."""

    async def work(platform: Platform) -> bool:
        return await accounts.grant_permission(platform, platform.municipality(slug), role_name, permission)

    changed = run_async(work)
    click.echo(
        f"{slug}: granted {permission} to {role_name}"
        if changed
        else f"{slug}: {role_name} already holds {permission}"
    )


@role.command()
@click.argument("role_name", metavar="ROLE")
@click.argument("permission")
@municipality_option
def revoke(role_name: str, permission: str, slug: str) -> None:
    """Take back a PERMISSION the municipality gave ROLE."""

    async def work(platform: Platform) -> bool:
        return await accounts.revoke_permission(platform, platform.municipality(slug), role_name, permission)

    changed = run_async(work)
    click.echo(
        f"{slug}: revoked {permission} from {role_name}"
        if changed
        else f"{slug}: {role_name} was not granted {permission}"
    )
