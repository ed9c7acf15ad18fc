"""``tsunagu municipality``: list, show, apply manifests, export the live state."""

from __future__ import annotations

from pathlib import Path

import click
import tomli_w
from rich.table import Table

from core.cli.runtime import console, json_option, print_json, run_async
from core.platform import Platform
from core.tenancy import service
from core.tenancy.manifest import load_manifests


@click.group()
def municipality() -> None:
    """Municipalities (tenants) and their manifests."""


@municipality.command("list")
@json_option
def list_(as_json: bool) -> None:
    """List the municipalities of this deployment."""

    async def work(platform: Platform) -> None:
        rows = sorted(platform.snapshot.by_id.values(), key=lambda m: m.code)
        enabled = platform.snapshot.enabled
        if as_json:
            print_json([{**_summary(m), "plugins": sorted(enabled.get(m.id, ()))} for m in rows])
            return
        table = Table("slug", "name", "name_en", "code", "hosts", "plugins")
        for m in rows:
            table.add_row(
                m.slug,
                m.name,
                m.name_en,
                m.code,
                ", ".join(m.hosts),
                ", ".join(sorted(enabled.get(m.id, ()))),
            )
        console.print(table)

    run_async(work)


@municipality.command()
@click.argument("slug")
@json_option
def show(slug: str, as_json: bool) -> None:
    """Show one municipality and its plugins."""

    async def work(platform: Platform) -> None:
        manifest = await service.export_manifest(platform, slug)
        if as_json:
            print_json(manifest.to_toml_dict())
            return
        m = platform.municipality(slug)
        console.print(f"[bold]{m.name}[/bold] ({m.name_en}) slug={m.slug} code={m.code}")
        console.print(f"hosts: {', '.join(m.hosts) or '-'}  timezone: {m.timezone}  locale: {m.locale}")
        table = Table("plugin", "enabled", "settings")
        for name, entry in sorted(manifest.plugins.items()):
            table.add_row(
                name,
                "yes" if entry.enabled else "no",
                tomli_w.dumps(entry.settings).strip().replace("\n", "; "),
            )
        console.print(table)

    run_async(work)


@municipality.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--dry-run", is_flag=True, help="Print what would change and change nothing.")
def apply(files: tuple[Path, ...], dry_run: bool) -> None:
    """Make the live state match manifest FILES: all of it, or nothing."""
    manifests = load_manifests(list(files))
    sources = [str(f) for f in files]

    async def work(platform: Platform) -> None:
        changes = await service.plan_apply(platform, manifests, sources)
        if not changes:
            click.echo("no changes")
            return
        click.echo("plan:" if dry_run else "applying:")
        for change in changes:
            click.echo(f"  {change.describe()}")
        if dry_run:
            click.echo(f"{len(changes)} change(s) would be made (dry run)")
            return
        await service.apply_manifests(platform, manifests, sources)
        click.echo(f"{len(changes)} change(s) applied")

    run_async(work)


@municipality.command()
@click.argument("slug")
@click.option("--output", "-o", type=click.Path(path_type=Path), help="Write to this file instead of stdout.")
def export(slug: str, output: Path | None) -> None:
    """Write the live state of a municipality as a manifest (TOML)."""

    async def work(platform: Platform) -> str:
        manifest = await service.export_manifest(platform, slug)
        return tomli_w.dumps(manifest.to_toml_dict())

    text = run_async(work)
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}")


def _summary(m: object) -> dict[str, object]:
    return {k: getattr(m, k) for k in ("slug", "name", "name_en", "code", "hosts", "timezone", "locale")}
