"""``tsunagu keys``: the signing keys of access tokens — what is published, and rotating them."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import click
from rich.table import Table

from core.cli.runtime import console, json_option, print_json, run_async
from core.db.base import utcnow
from core.exceptions import InvalidInput
from core.identity.keys import KeyRing, KeyRingUnreadable, NoActiveSigningKey, SigningKey
from core.identity.keystore import signing_keys
from core.identity.token_routes import JWKS_MAX_AGE
from core.platform import Platform

_DURATION = re.compile(r"(?P<amount>\d{1,6})(?P<unit>[smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
MAX_PREPUBLISH = timedelta(days=30)


def parse_duration(text: str, option: str) -> timedelta:
    """``"30d"``, ``"12h"``, ``"90m"``, ``"45s"``, ``"2w"``, or ``"0"`` -> a timedelta.

    :raises InvalidInput: anything else, naming ``option``.
    """
    text = text.strip().lower()
    if text == "0":
        return timedelta(0)
    found = _DURATION.fullmatch(text)
    if found is None:
        raise InvalidInput(f"{option} must be a duration like 30d, 12h, 90m, 45s or 2w, got {text!r}")
    return timedelta(**{_UNITS[found["unit"]]: int(found["amount"])})


def _status(key: SigningKey, now: datetime, signing: SigningKey | None) -> str:
    if signing is not None and key.kid == signing.kid:
        return "signing"
    if now < key.activates_at:
        return "waiting"
    return "retired"


def _rows(ring: KeyRing, now: datetime) -> list[dict[str, object]]:
    try:
        signing: SigningKey | None = ring.current(now)
    except NoActiveSigningKey:  # still show what is published
        signing = None
    return [
        {
            "kid": key.kid,
            "status": _status(key, now, signing),
            "created_at": key.created_at,
            "activates_at": key.activates_at,
            "retires_at": key.retires_at,
            "published_until": key.published_until(),
        }
        for key in ring.published(now)
    ]


def _with_hint(exc: KeyRingUnreadable) -> KeyRingUnreadable:
    return KeyRingUnreadable(
        f"{exc.detail}; set TSUNAGU_SECRET_KEY to the secret they were stored with, or replace them with "
        "`tsunagu keys rotate --discard-unreadable`"
    )


def _when(value: object) -> str:
    return value.isoformat(timespec="seconds") if isinstance(value, datetime) else "-"


def _print(rows: list[dict[str, object]]) -> None:
    table = Table("kid", "status", "created", "signs from", "signs until", "published until")
    for row in rows:
        table.add_row(
            str(row["kid"]),
            str(row["status"]),
            _when(row["created_at"]),
            _when(row["activates_at"]),
            _when(row["retires_at"]),
            _when(row["published_until"]),
        )
    console.print(table)


@click.group()
def keys() -> None:
    """Signing keys of access tokens (the JWK Set at /.well-known/jwks.json)."""


@keys.command()
@json_option
def show(as_json: bool) -> None:
    """The published keys: which one signs, which wait, which retired ones still verify."""

    async def work(platform: Platform) -> list[dict[str, object]] | None:
        try:
            ring = await signing_keys(platform).stored()
        except KeyRingUnreadable as exc:
            raise _with_hint(exc) from exc
        return None if ring is None else _rows(ring, utcnow())

    rows = run_async(work)
    if as_json:
        print_json(rows or [])
    elif rows is None:
        click.echo(
            "no signing keys yet: the first is made when a token is first issued (or by `tsunagu keys rotate`)"
        )
    else:
        _print(rows)


@keys.command()
@click.option(
    "--prepublish",
    default="1d",
    show_default=True,
    metavar="DURATION",
    help="How long the new key is published before it signs (30d, 12h, 90m, 0).",
)
@click.option(
    "--discard-unreadable",
    is_flag=True,
    help="If the stored keys cannot be decrypted (TSUNAGU_SECRET_KEY changed or lost), replace them with a "
    "new key that signs at once; every token issued before stops working.",
)
@json_option
def rotate(prepublish: str, discard_unreadable: bool, as_json: bool) -> None:
    """Add a new signing key: published now, signing after --prepublish; the current key then retires."""
    wait = parse_duration(prepublish, "--prepublish")
    if wait > MAX_PREPUBLISH:
        raise InvalidInput(f"--prepublish must be at most {MAX_PREPUBLISH.days}d, got {prepublish}")
    now = utcnow()

    async def work(platform: Platform) -> KeyRing:
        try:
            return await signing_keys(platform).rotate(
                now=now, prepublish=wait, discard_unreadable=discard_unreadable
            )
        except KeyRingUnreadable as exc:
            raise _with_hint(exc) from exc

    ring = run_async(work)
    rows = _rows(ring, now)
    if as_json:
        print_json(rows)
        return
    new = ring.keys[-1]
    click.echo(f"new signing key {new.kid}: published now, signs from {_when(new.activates_at)}")
    for key in ring.keys[:-1]:
        if key.retires_at is not None and key.is_published(now):
            click.echo(
                f"  {key.kid} signs until {_when(key.retires_at)}, verifies until {_when(key.published_until())}"
            )
    if wait < timedelta(seconds=JWKS_MAX_AGE):
        click.echo(
            f"warning: --prepublish {prepublish} is shorter than the JWK Set cache time ({JWKS_MAX_AGE} s): "
            "services that cache it may refuse new tokens for a few minutes",
            err=True,
        )
