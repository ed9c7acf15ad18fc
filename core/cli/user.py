"""``tsunagu user``: accounts (one per person, for the whole region) and the roles they hold per municipality."""

from __future__ import annotations

import sys
from typing import Any

import click
from rich.table import Table

from core.cli.runtime import console, json_option, municipality_option, print_json, run_async
from core.exceptions import InvalidInput
from core.identity import accounts
from core.identity.passwords import check_password_policy, set_password
from core.identity.people import parse_person
from core.identity.permissions import ROLES
from core.platform import Platform
from core.tenancy.manifest import LOCALES

_ADDRESS = ("postal_code", "prefecture", "city", "town", "street", "building")
_REQUIRED = ("email", "display_name", "family_name", "given_name", "family_name_kana", "given_name_kana")
_REQUIRED_ADDRESS = ("postal_code", "prefecture", "city", "street")
_OPTION_OF = {"residence_municipality": "--residence", "password": "--password-stdin"}
role_argument = click.argument("role", type=click.Choice(ROLES), metavar="ROLE")


def option_name(field: str) -> str:
    """The option a field of :class:`~core.identity.people.PersonInput` comes from: ``address.city`` -> ``--city``."""
    field = field.rsplit(".", 1)[-1]
    return _OPTION_OF.get(field, "--" + field.replace("_", "-"))


def _one_line(errors: list[dict[str, str]]) -> InvalidInput:
    detail = "; ".join(f"{option_name(e['field'])}: {e['rule']}" for e in errors)
    return InvalidInput(detail, errors=errors)


def person_data(options: dict[str, str | None]) -> tuple[dict[str, Any], set[str]]:
    """The ``PersonInput`` mapping the options make, and the fields that were required but not given.

    A missing required field is sent as ``""``, so that :func:`parse_person` checks every other field too and
    one message can name all problems.
    """
    missing = {f for f in _REQUIRED if options.get(f) is None}
    data: dict[str, Any] = {f: options.get(f) or "" for f in _REQUIRED}
    for field in ("phone", "residence_municipality"):
        if options.get(field) is not None:
            data[field] = options[field]
    if any(options.get(f) is not None for f in _ADDRESS):
        missing |= {f"address.{f}" for f in _REQUIRED_ADDRESS if options.get(f) is None}
        data["address"] = {f: options.get(f) or "" for f in _REQUIRED_ADDRESS}
        for field in ("town", "building"):
            if options.get(field) is not None:
                data["address"][field] = options[field]
    return data, missing


def read_password() -> str:
    """A password from standard input: its first line, without the line break."""
    line = sys.stdin.readline()
    return line.removesuffix("\n").removesuffix("\r")


@click.group()
def user() -> None:
    """Accounts and the roles they hold in each municipality."""


@user.command()
@click.option("--email", help="Also the login name; unique in any case.")
@click.option("--display-name", help="The name shown to others.")
@click.option("--family-name", help="姓, as registered.")
@click.option("--given-name", help="名, as registered.")
@click.option("--family-name-kana", help="セイ: katakana or hiragana.")
@click.option("--given-name-kana", help="メイ: katakana or hiragana.")
@click.option("--phone", help="A Japanese number: 087-839-2111, +81 87 839 2111, ...")
@click.option("--postal-code", help="〒 NNN-NNNN (an address needs it, --prefecture, --city and --street).")
@click.option("--prefecture", help="都道府県 in full: 香川県.")
@click.option("--city", help="市区町村: 木田郡三木町.")
@click.option("--town", help="町字: 氷上.")
@click.option("--street", help="番地: 310.")
@click.option("--building", help="方書: building and room.")
@click.option(
    "--residence", "residence_municipality", metavar="SLUG", help="The member municipality lived in."
)
@click.option("--locale", default="ja", show_default=True, help=f"One of {', '.join(LOCALES)}.")
@click.option("--operator", is_flag=True, help="Operator of the whole deployment (every municipality).")
@click.option("--password-stdin", is_flag=True, help="Read a local password from the first line of stdin.")
def create(operator: bool, password_stdin: bool, **options: str | None) -> None:
    """Create an account and print its id. Every problem with the input is reported at once, in one line, and
    then nothing is stored."""
    data, missing = person_data(options)
    locale = options["locale"] or ""
    data["locale"] = locale if locale in LOCALES else "ja"  # checked below, with the rest
    password = read_password() if password_stdin else None

    async def work(platform: Platform) -> str:
        errors: list[dict[str, str]] = []
        person = None
        try:
            person = parse_person(data)
        except InvalidInput as exc:
            for error in exc.extra.get("errors", []):
                rule = "required" if error["field"] in missing else error["rule"]
                errors.append({"field": error["field"], "rule": rule})
        if locale not in LOCALES:
            errors.append({"field": "locale", "rule": f"must be one of {', '.join(LOCALES)}, got {locale!r}"})
        residence = data.get("residence_municipality")
        reported = any(e["field"] == "residence_municipality" for e in errors)
        if (
            residence and not reported and residence not in platform.snapshot.by_slug
        ):  # as create_account would
            errors.append(
                {
                    "field": "residence_municipality",
                    "rule": f"must be a member municipality, got {residence!r}",
                }
            )
        if password is not None:
            try:
                check_password_policy(password, email=person.email if person else None)
            except InvalidInput as exc:
                errors.extend({"field": "password", "rule": e["message"]} for e in exc.extra["errors"])
        if errors or person is None:
            raise _one_line(errors)
        try:
            account = await accounts.create_account(platform, person, operator=operator)
        except InvalidInput as exc:
            raise _one_line(exc.extra["errors"]) from exc  # the email taken (the rest was checked above)
        if password is not None:
            try:
                await set_password(platform, account.id, password)
            except Exception:  # nothing stored unless all of it is
                await accounts.delete_account(platform, account.id)
                raise
        return str(account.id)

    click.echo(run_async(work))


@user.command("list")
@click.option("--municipality", "-m", "slug", metavar="SLUG", help="Only accounts holding a role there.")
@json_option
def list_(slug: str | None, as_json: bool) -> None:
    """List accounts, with the roles each holds (in SLUG only, with --municipality)."""

    async def work(platform: Platform) -> list[dict[str, Any]]:
        municipality = platform.municipality(slug) if slug is not None else None
        found = await accounts.list_accounts(platform, municipality)
        roles = await accounts.roles_in(platform, [a.id for a in found], municipality)
        return [
            {
                "id": str(a.id),
                "email": a.email,
                "display_name": a.display_name,
                "is_operator": a.is_operator,
                "disabled": a.disabled_at is not None,
                "roles": dict(sorted(roles.get(a.id, {}).items())),
            }
            for a in found
        ]

    rows = run_async(work)
    if as_json:
        print_json(rows)
        return
    table = Table("id", "email", "display name", "roles", "operator", "disabled")
    for row in rows:
        table.add_row(
            row["id"],
            row["email"] or "-",
            row["display_name"],
            _roles_text(row["roles"], with_slug=slug is None),
            "yes" if row["is_operator"] else "",
            "yes" if row["disabled"] else "",
        )
    console.print(table)


def _roles_text(roles: dict[str, list[str]], *, with_slug: bool = True) -> str:
    if not with_slug:
        return ", ".join(role for held in roles.values() for role in held)
    return "; ".join(f"{slug}: {', '.join(held)}" for slug, held in roles.items())


@user.command()
@click.argument("reference", metavar="ID|EMAIL")
@json_option
def show(reference: str, as_json: bool) -> None:
    """One account: the profile, and the roles held in each municipality."""

    async def work(platform: Platform) -> accounts.AccountInfo:
        return await accounts.describe_account(platform, await accounts.find_account(platform, reference))

    info = run_async(work)
    if as_json:
        print_json(info)
        return
    console.print(f"[bold]{info.display_name}[/bold] {info.email or '-'}  id={info.id}")
    name = " ".join(filter(None, (info.family_name, info.given_name)))
    kana = "\u3000".join(filter(None, (info.family_name_kana, info.given_name_kana)))
    if name or kana:
        console.print(f"name: {name or '-'} ({kana or '-'})")
    if info.postal_code:
        parts = (info.prefecture, info.city, info.town, info.street, info.building)
        console.print(f"address: 〒{info.postal_code} {' '.join(filter(None, parts))}")
    console.print(
        f"phone: {info.phone or '-'}  residence: {info.residence or '-'}  locale: {info.locale}  "
        f"password: {'set' if info.has_password else 'none'}"
    )
    status = (
        f"disabled since {info.disabled_at.isoformat(timespec='seconds')}" if info.disabled_at else "active"
    )
    console.print(f"operator: {'yes' if info.is_operator else 'no'}  status: {status}")
    table = Table("municipality", "roles")
    for slug, held in info.roles.items():
        table.add_row(slug, ", ".join(held))
    console.print(table)


@user.command()
@role_argument
@municipality_option
@click.argument("reference", metavar="ID|EMAIL")
def grant(role: str, slug: str, reference: str) -> None:
    """Give an account ROLE in one municipality."""

    async def work(platform: Platform) -> bool:
        account = await accounts.find_account(platform, reference)
        return await accounts.grant_role(platform, platform.municipality(slug), account.id, role)

    changed = run_async(work)
    click.echo(
        f"{slug}: granted {role} to {reference}" if changed else f"{slug}: {reference} already holds {role}"
    )


@user.command()
@role_argument
@municipality_option
@click.argument("reference", metavar="ID|EMAIL")
def revoke(role: str, slug: str, reference: str) -> None:
    """Take ROLE away from an account in one municipality."""

    async def work(platform: Platform) -> bool:
        account = await accounts.find_account(platform, reference)
        return await accounts.revoke_role(platform, platform.municipality(slug), account.id, role)

    changed = run_async(work)
    click.echo(
        f"{slug}: revoked {role} from {reference}" if changed else f"{slug}: {reference} did not hold {role}"
    )
