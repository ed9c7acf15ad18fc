"""``tsunagu apikey``: API keys of one municipality — create (the key is shown once), list, revoke."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import click
import msgspec
from rich.table import Table

from core.cli.keys import parse_duration
from core.cli.runtime import console, json_option, municipality_option, print_json, run_async
from core.db.base import utcnow
from core.exceptions import InvalidInput
from core.identity.apikeys import ApiKeyInfo, create_api_key, list_api_keys, revoke_api_key
from core.platform import Platform

DEFAULT_EXPIRY = "90d"
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DURATION = re.compile(r"\d+[A-Za-z]+")


def parse_expiry(text: str, timezone: str, now: datetime) -> datetime:
    """``--expires``: a duration from now (``30d``), a date (``2027-03-31``: the key works through that day in
    the municipality's time zone), or a date and time (``2027-03-31T18:00``, local unless it has an offset).

    :raises InvalidInput: anything else.
    """
    text = text.strip()
    zone = ZoneInfo(timezone)
    if _DATE.fullmatch(text):
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise InvalidInput(f"--expires: {text!r} is not a date") from None
        return datetime.combine(day + timedelta(days=1), time(0), zone)
    if _DURATION.fullmatch(text):
        return now + parse_duration(text, "--expires")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            f"--expires must be a date (2027-03-31), a date and time (2027-03-31T18:00) or a duration (30d), "
            f"got {text!r}"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)


def _local(value: datetime | None, timezone: str) -> str:
    return "-" if value is None else value.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M %Z")


@click.group()
def apikey() -> None:
    """API keys for other systems: one municipality, some scopes, an expiry."""


@apikey.command()
@municipality_option
@click.option("--name", required=True, help="What the key is for, e.g. the vendor and system.")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    required=True,
    metavar="SCOPE",
    help="A scope the key holds. Repeatable.",
)
@click.option(
    "--expires",
    default=DEFAULT_EXPIRY,
    show_default=True,
    metavar="WHEN",
    help="A date (2027-03-31: through that day, local time), a date and time, or a duration (30d). At most 2 years.",
)
@json_option
def create(slug: str, name: str, scopes: tuple[str, ...], expires: str, as_json: bool) -> None:
    """Create a key. The key is printed this once and never stored: keep it now."""
    now = utcnow()

    async def work(platform: Platform) -> tuple[ApiKeyInfo, str, str]:
        municipality = platform.municipality(slug)
        expires_at = parse_expiry(expires, municipality.timezone, now)
        info, key = await create_api_key(
            platform, municipality, name=name, scopes=scopes, expires_at=expires_at, now=now
        )
        return info, key, municipality.timezone

    info, key, timezone = run_async(work)
    if as_json:
        print_json({**msgspec.to_builtins(info), "key": key})
        return
    click.echo(f"created API key {info.prefix} for {info.municipality}: {info.name}")
    click.echo(f"  id:      {info.id}")
    click.echo(f"  scopes:  {' '.join(info.scopes)}")
    click.echo(f"  expires: {_local(info.expires_at, timezone)}")
    click.echo("the key is shown this once and cannot be recovered; store it now:")
    click.echo(key)


@apikey.command("list")
@municipality_option
@json_option
def list_(slug: str, as_json: bool) -> None:
    """The municipality's keys (never their secrets), revoked and expired ones included."""

    async def work(platform: Platform) -> tuple[list[ApiKeyInfo], str]:
        municipality = platform.municipality(slug)
        return await list_api_keys(platform, municipality), municipality.timezone

    found, timezone = run_async(work)
    now = utcnow()
    if as_json:
        print_json([{**msgspec.to_builtins(info), "status": info.status(now)} for info in found])
        return
    if not found:
        click.echo(f"{slug} has no API keys")
        return
    table = Table("id", "prefix", "name", "scopes", "created", "expires", "last used", "revoked")
    for info in found:
        expires = _local(info.expires_at, timezone)
        if info.status(now) == "expired":
            expires += " (expired)"
        table.add_row(
            str(info.id),
            info.prefix,
            info.name,
            " ".join(info.scopes),
            _local(info.created_at, timezone),
            expires,
            _local(info.last_used_at, timezone),
            _local(info.revoked_at, timezone),
        )
    console.print(table)


@apikey.command()
@click.argument("key")
@municipality_option
def revoke(key: str, slug: str) -> None:
    """Revoke KEY (its id or prefix): it and its access tokens stop working at once."""

    async def work(platform: Platform) -> tuple[ApiKeyInfo, bool]:
        return await revoke_api_key(platform, platform.municipality(slug), key)

    info, changed = run_async(work)
    if changed:
        click.echo(f"{slug}: revoked API key {info.prefix} ({info.name})")
    else:
        click.echo(f"{slug}: API key {info.prefix} ({info.name}) was already revoked")
