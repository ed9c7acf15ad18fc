"""``tsunagu plugin``: the plugins × municipalities matrix, details, enable, disable, configure."""

from __future__ import annotations

import tomllib
from typing import Any

import click
import msgspec
from rich.table import Table

from core.cli.runtime import console, json_option, municipality_option, print_json, run_async
from core.exceptions import InvalidInput, NotFound
from core.platform import Platform
from core.tenancy import service


@click.group()
def plugin() -> None:
    """Plugins and where they are enabled."""


@plugin.command("list")
@click.option("--municipality", "-m", "slug", metavar="SLUG", help="Only this municipality.")
@json_option
def list_(slug: str | None, as_json: bool) -> None:
    """Plugins × municipalities: where each is enabled; broken plugins with the reason."""

    async def work(platform: Platform) -> None:
        municipalities = sorted(platform.snapshot.by_id.values(), key=lambda m: m.code)
        if slug is not None:
            municipalities = [platform.municipality(slug)]
        plugins = platform.plugins.plugins
        if as_json:
            print_json(
                {
                    "plugins": [
                        {
                            "name": name,
                            "version": p.meta.version,
                            "title": {"ja": p.meta.title.ja, "en": p.meta.title.en},
                            "enabled_for": [m.slug for m in municipalities if platform.is_enabled(m, name)],
                        }
                        for name, p in sorted(plugins.items())
                    ],
                    "broken": [{"name": n, "reason": r} for n, r in sorted(platform.plugins.broken.items())],
                }
            )
            return
        table = Table("plugin", "version", *[m.slug for m in municipalities])
        for name, p in sorted(plugins.items()):
            table.add_row(
                name, p.meta.version, *["●" if platform.is_enabled(m, name) else "·" for m in municipalities]
            )
        console.print(table)
        for name, reason in sorted(platform.plugins.broken.items()):
            console.print(f"[red]broken[/red] {name}: {reason}")

    run_async(work)


@plugin.command()
@click.argument("name")
@json_option
def info(name: str, as_json: bool) -> None:
    """What a plugin declares: version, core API, dependencies, settings, tables, migrations."""

    async def work(platform: Platform) -> None:
        if name in platform.plugins.broken:
            raise NotFound(f"plugin {name} is broken: {platform.plugins.broken[name]}")
        p = platform.plugins.plugins.get(name)
        if p is None:
            raise NotFound(
                f"no plugin named {name!r} (installed: {', '.join(sorted(platform.plugins.plugins))})"
            )
        meta = p.meta
        settings_fields = [
            {"name": f.name, "type": _type_name(f.type), "default": _default(f)}
            for f in msgspec.inspect.type_info(meta.settings).fields  # type: ignore[union-attr]
        ]
        data = {
            "name": meta.name,
            "version": meta.version,
            "title": {"ja": meta.title.ja, "en": meta.title.en},
            "description": meta.description,
            "core_api": meta.core_api,
            "requires": meta.requires,
            "settings": settings_fields,
            "tables": list(meta.tables),
            "migrations": meta.migrations,
            "origin": platform.plugins.origins.get(name),
            "enabled_for": sorted(
                m.slug for m in platform.snapshot.by_id.values() if platform.is_enabled(m, name)
            ),
        }
        if as_json:
            print_json(data)
            return
        console.print(f"[bold]{meta.name}[/bold] {meta.version} — {meta.title.ja} / {meta.title.en}")
        for key in ("description", "core_api", "requires", "tables", "migrations", "origin", "enabled_for"):
            console.print(f"  {key}: {data[key]}")
        table = Table("setting", "type", "default")
        for f in settings_fields:
            table.add_row(f["name"], f["type"], repr(f["default"]))
        console.print(table)

    run_async(work)


@plugin.command()
@click.argument("name")
@municipality_option
def enable(name: str, slug: str) -> None:
    """Switch a plugin on for one municipality (dependencies and settings are checked first)."""
    change = run_async(lambda platform: service.set_plugin_enabled(platform, slug, name, True))
    click.echo(f"{slug}: enabled {name}" if change else f"{slug}: {name} was already enabled")


@plugin.command()
@click.argument("name")
@municipality_option
def disable(name: str, slug: str) -> None:
    """Switch a plugin off for one municipality (its data is kept)."""
    change = run_async(lambda platform: service.set_plugin_enabled(platform, slug, name, False))
    click.echo(f"{slug}: disabled {name}" if change else f"{slug}: {name} was already disabled")


@plugin.command()
@click.argument("name")
@municipality_option
@click.option(
    "--set",
    "assignments",
    multiple=True,
    metavar="KEY=VALUE",
    help='Set a setting; VALUE is read as TOML (30, true, ["a"], "text"), else as text. Repeatable.',
)
@json_option
def config(name: str, slug: str, assignments: tuple[str, ...], as_json: bool) -> None:
    """Show or change a plugin's settings for one municipality (validated before anything is written)."""
    parsed = dict(parse_assignment(a) for a in assignments)
    settings = run_async(lambda platform: service.configure_plugin(platform, slug, name, parsed))
    if as_json:
        print_json(settings)
        return
    if not settings:
        click.echo(f"{slug}: {name} uses its defaults")
    for key, value in sorted(settings.items()):
        click.echo(f"{key} = {value!r}")


def parse_assignment(text: str) -> tuple[str, Any]:
    """``"page_size=30"`` -> ``("page_size", 30)``. :raises InvalidInput: without ``=`` or with an empty key."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise InvalidInput(f"--set expects KEY=VALUE, got {text!r}")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key, msgspec.json.decode(msgspec.json.encode(value))


def _type_name(t: Any) -> str:
    """A readable name for a msgspec type: ``int``, ``tuple[str, ...]``, ``str | None``."""
    if isinstance(t, msgspec.inspect.UnionType):
        return " | ".join(_type_name(x) for x in t.types)
    if isinstance(t, msgspec.inspect.VarTupleType):
        return f"tuple[{_type_name(t.item_type)}, ...]"
    if isinstance(t, (msgspec.inspect.ListType, msgspec.inspect.SetType, msgspec.inspect.FrozenSetType)):
        return f"{type(t).__name__.removesuffix('Type').lower()}[{_type_name(t.item_type)}]"
    if isinstance(t, msgspec.inspect.DictType):
        return f"dict[{_type_name(t.key_type)}, {_type_name(t.value_type)}]"
    if isinstance(t, msgspec.inspect.LiteralType):
        return " | ".join(repr(v) for v in t.values)
    return type(t).__name__.removesuffix("Type").lower()


def _default(field: Any) -> Any:
    if field.default is not msgspec.NODEFAULT:
        return msgspec.to_builtins(field.default)
    if field.default_factory is not msgspec.NODEFAULT:
        return msgspec.to_builtins(field.default_factory())
    return None
