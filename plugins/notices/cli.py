"""``tsunagu notices``: post, list and withdraw notices of one municipality."""

from __future__ import annotations

import uuid
from datetime import datetime

import click
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncSession

from core.cli.runtime import console, json_option, municipality_option, print_json, run_for_plugin
from core.exceptions import InvalidInput
from core.platform import Platform
from core.tenancy.registry import Municipality
from plugins.notices import services
from plugins.notices.schemas import NoticeCreate


def _datetime(value: str | None, field: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise InvalidInput(
            f"--{field}: expected ISO 8601 with offset, e.g. 2026-12-01T09:00+09:00, got {value!r}"
        ) from exc
    if parsed.tzinfo is None:
        raise InvalidInput(f"--{field}: needs a time zone offset, e.g. +09:00, got {value!r}")
    return parsed


@click.command()
@municipality_option
@click.option("--title", required=True)
@click.option("--body", required=True)
@click.option("--category", default="general", show_default=True)
@click.option("--publish-at", help="ISO 8601 with offset; now if omitted.")
@click.option("--expires-at", help="ISO 8601 with offset.")
def post(
    slug: str, title: str, body: str, category: str, publish_at: str | None, expires_at: str | None
) -> None:
    """Post a notice."""
    data = NoticeCreate(
        title=title,
        body=body,
        category=category,
        published_at=_datetime(publish_at, "publish-at"),
        expires_at=_datetime(expires_at, "expires-at"),
    )

    async def work(platform: Platform, municipality: Municipality, session: AsyncSession) -> str:
        settings = platform.plugin_settings(municipality, "notices")
        return str((await services.post_notice(session, settings, data)).id)

    click.echo(run_for_plugin(slug, "notices", work))


@click.command("list")
@municipality_option
@json_option
def list_(slug: str, as_json: bool) -> None:
    """Every notice of the municipality, scheduled and withdrawn ones included."""

    async def work(
        _platform: Platform, _municipality: Municipality, session: AsyncSession
    ) -> list[dict[str, object]]:
        rows = await services.list_all(session)
        return [
            {
                "id": str(n.id),
                "category": n.category,
                "title": n.title,
                "published_at": n.published_at.isoformat(),
                "expires_at": n.expires_at.isoformat() if n.expires_at else None,
                "withdrawn": n.withdrawn_at is not None,
            }
            for n in rows
        ]

    rows = run_for_plugin(slug, "notices", work)
    if as_json:
        print_json(rows)
        return
    table = Table("id", "category", "title", "published_at", "withdrawn")
    for r in rows:
        table.add_row(
            str(r["id"]),
            str(r["category"]),
            str(r["title"]),
            str(r["published_at"]),
            "yes" if r["withdrawn"] else "",
        )
    console.print(table)


@click.command()
@click.argument("notice_id", type=click.UUID)
@municipality_option
def withdraw(notice_id: uuid.UUID, slug: str) -> None:
    """Take a notice down (it is kept, marked withdrawn)."""

    async def work(_platform: Platform, _municipality: Municipality, session: AsyncSession) -> None:
        await services.withdraw(session, notice_id)

    run_for_plugin(slug, "notices", work)
    click.echo(f"withdrawn {notice_id}")


COMMANDS = [post, list_, withdraw]
