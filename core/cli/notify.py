"""``tsunagu notify``: templates (where each comes from, and whether all render), sending to a topic, a
municipality's topics, webhook endpoints, sender address, and the state of deliveries."""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import msgspec
from rich.table import Table
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.cli.runtime import console, json_option, municipality_option, print_json, run_async
from core.exceptions import InvalidInput
from core.notifications import broadcast, sender, topics, webhooks
from core.notifications.models import Delivery, Subscription
from core.notifications.registry import template_library
from core.notifications.templates import LOCALES, TemplateError, TemplateLibrary, check_template
from core.platform import Platform
from core.tenancy.registry import Municipality

T = TypeVar("T")
ACTOR = "cli"


def _in(slug: str, work: Callable[[Platform, Municipality, AsyncSession], Awaitable[T]]) -> T:
    """Run ``work`` in a session bound to the municipality ``slug`` (committed when it returns)."""

    async def bound(platform: Platform) -> T:
        municipality = platform.municipality(slug)
        async with platform.sessions.tenant(municipality.id) as session:
            return await work(platform, municipality, session)

    return run_async(bound)


@click.group()
def notify() -> None:
    """Notifications: templates, topic sends, topics, webhooks, sender address, deliveries."""


# --- templates --------------------------------------------------------------------------------------------------


def _origins(library: TemplateLibrary, slug: str | None) -> list[dict[str, Any]]:
    rows = []
    for name in library.names(slug):
        try:
            resolved = library.resolve(name, slug)
        except TemplateError as exc:
            rows.append({"name": name, "error": exc.detail})
            continue
        files = resolved.by_locale
        rows.append(
            {
                "name": name,
                **{locale: (files[locale].origin if locale in files else None) for locale in LOCALES},
                "files": sorted({str(f.path) for f in files.values()}),
                "description": next((f.description for f in files.values() if f.description), ""),
            }
        )
    return rows


@notify.command()
@municipality_option
@json_option
def templates(slug: str, as_json: bool) -> None:
    """Every template the municipality can send, and where each language comes from."""

    async def work(platform: Platform) -> list[dict[str, Any]]:
        platform.municipality(slug)
        return _origins(template_library(platform), slug)

    rows = run_async(work)
    if as_json:
        print_json(rows)
        return
    table = Table("template", "ja", "en", "description")
    for row in rows:
        if "error" in row:
            table.add_row(row["name"], "[red]error[/red]", "", row["error"])
        else:
            table.add_row(row["name"], row["ja"] or "-", row["en"] or "-", row["description"])
    console.print(table)


@notify.command()
@click.option(
    "--municipality",
    "-m",
    "slug",
    metavar="SLUG",
    help="Check as this municipality sees them (its overrides included); default: every municipality folder.",
)
def check(slug: str | None) -> None:
    """Render every template in Japanese and English with its [sample] context; exit 2 naming each problem."""

    async def work(platform: Platform) -> tuple[int, list[str]]:
        library = template_library(platform)
        if slug is not None:
            await platform.refresh(force=True)
            platform.municipality(slug)
            views: list[str | None] = [slug]
        else:
            folder = Path(platform.settings.municipalities_dir)
            views = [None, *sorted(p.parent.name for p in folder.glob("*/templates") if p.is_dir())]
        problems: list[str] = []
        checked = 0
        for view in views:
            for name in library.names(view):
                try:
                    found = check_template(library.resolve(name, view))
                except TemplateError as exc:
                    found = [exc.detail]
                checked += 1
                where = f"{view}: " if view else ""
                problems.extend(f"{where}{problem}" for problem in found)
        return checked, list(dict.fromkeys(problems))

    checked, problems = run_async(work, refresh=False)
    for problem in problems:
        click.echo(problem, err=True)
    if problems:
        raise TemplateError(f"{len(problems)} template problem(s) in {checked} template(s) checked")
    click.echo(f"{checked} template(s) render in {' and '.join(LOCALES)} with their sample context")


# --- sending ----------------------------------------------------------------------------------------------------


def _context(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"--context must be a JSON object: {exc.msg} at column {exc.colno}") from None
    if not isinstance(value, dict):
        raise InvalidInput('--context must be a JSON object, like \'{"date": "3月1日"}\'')
    return value


@notify.command()
@municipality_option
@click.option(
    "--topic", required=True, help="The topic: its subscribers in the municipality get the message."
)
@click.option("--template", help="A template name (see `tsunagu notify templates`).")
@click.option("--context", "context_json", metavar="JSON", help="The template's variables, a JSON object.")
@click.option("--subject", help="Instead of a template: the subject, as written.")
@click.option("--body", help="Instead of a template: the text, as written.")
@click.option("--key", help="Idempotency key: sending again with it sends nothing more.")
@json_option
def send(
    slug: str,
    topic: str,
    template: str | None,
    context_json: str | None,
    subject: str | None,
    body: str | None,
    key: str | None,
    as_json: bool,
) -> None:
    """Send one message to everyone subscribed to a topic in the municipality."""
    context = _context(context_json)

    async def work(_platform: Platform, _m: Municipality, session: AsyncSession) -> tuple[Any, int]:
        out = await broadcast.send_to_topic(
            session,
            topic=topic,
            template=template,
            context=context,
            subject=subject,
            body=body,
            key=key,
            actor=ACTOR,
        )
        subscribers = await session.scalar(
            select(func.count()).select_from(Subscription).where(Subscription.topic == topic)
        )
        return out, int(subscribers or 0)

    out, subscribers = _in(slug, work)
    if as_json:
        print_json({**msgspec.to_builtins(out), "subscribers": subscribers})
        return
    click.echo(
        f"{slug}: queued topic send {out.id} ({out.template}) to {subscribers} subscriber(s) of {topic}"
    )


# --- topics -----------------------------------------------------------------------------------------------------


@notify.group()
def topic() -> None:
    """The topics a municipality sends on: the core ones and its own."""


@topic.command("list")
@municipality_option
@json_option
def topic_list(slug: str, as_json: bool) -> None:
    """Topics offered, with how many people subscribed to each."""

    async def work(_p: Platform, _m: Municipality, session: AsyncSession) -> list[dict[str, Any]]:
        counts = dict(
            (
                await session.execute(select(Subscription.topic, func.count()).group_by(Subscription.topic))
            ).all()
        )
        return [
            {**msgspec.to_builtins(t), "subscribers": int(counts.get(t.name, 0))}
            for t in await topics.list_topics(session)
        ]

    rows = _in(slug, work)
    if as_json:
        print_json(rows)
        return
    table = Table("topic", "title", "title_en", "core", "subscribers")
    for row in rows:
        table.add_row(
            row["name"], row["title"], row["title_en"], "yes" if row["core"] else "", str(row["subscribers"])
        )
    console.print(table)


@topic.command("add")
@municipality_option
@click.argument("name")
@click.option("--title", required=True, help="The title in Japanese (ごみ収集).")
@click.option("--title-en", required=True, help="The title in English (Waste collection).")
def topic_add(slug: str, name: str, title: str, title_en: str) -> None:
    """Offer a topic of the municipality's own."""

    async def work(_p: Platform, _m: Municipality, session: AsyncSession) -> None:
        await topics.add_topic(session, name=name, title=title, title_en=title_en, actor=ACTOR)

    _in(slug, work)
    click.echo(f"{slug}: topic {name} added")


@topic.command("remove")
@municipality_option
@click.argument("name")
def topic_remove(slug: str, name: str) -> None:
    """Stop offering one of the municipality's own topics (its subscriptions are removed)."""

    async def work(_p: Platform, _m: Municipality, session: AsyncSession) -> int:
        return await topics.remove_topic(session, name, actor=ACTOR)

    removed = _in(slug, work)
    click.echo(f"{slug}: topic {name} removed, with {removed} subscription(s)")


# --- webhooks ---------------------------------------------------------------------------------------------------


@notify.group()
def webhook() -> None:
    """Webhook endpoints: systems that receive the municipality's notifications as signed JSON POSTs."""


@webhook.command("add")
@municipality_option
@click.option("--name", required=True, help="What the endpoint is (防災無線連携).")
@click.option("--url", required=True, help="Where to POST: an http:// or https:// URL.")
@click.option(
    "--template", "templates_", multiple=True, help="A template (or <plugin>.*) it receives; repeatable."
)
@click.option("--topic", "topics_", multiple=True, help="A topic whose sends it receives; repeatable.")
@json_option
def webhook_add(
    slug: str, name: str, url: str, templates_: tuple[str, ...], topics_: tuple[str, ...], as_json: bool
) -> None:
    """Register an endpoint; its signing secret is printed this once."""

    async def work(platform: Platform, _m: Municipality, session: AsyncSession) -> webhooks.WebhookCreated:
        return await webhooks.create_webhook(
            session, platform, name=name, url=url, templates=templates_, topics=topics_, actor=ACTOR
        )

    created = _in(slug, work)
    if as_json:
        print_json(created)
        return
    click.echo(f"{slug}: webhook {created.endpoint.id} registered for {created.endpoint.url}")
    click.echo(f"secret (shown only now; the receiver verifies signatures with it): {created.secret}")


@webhook.command("list")
@municipality_option
@json_option
def webhook_list(slug: str, as_json: bool) -> None:
    """The municipality's endpoints (never their secrets)."""

    async def work(_p: Platform, _m: Municipality, session: AsyncSession) -> list[webhooks.WebhookOut]:
        return await webhooks.list_webhooks(session)

    rows = _in(slug, work)
    if as_json:
        print_json(rows)
        return
    table = Table("id", "name", "url", "templates", "topics")
    for row in rows:
        table.add_row(str(row.id), row.name, row.url, ", ".join(row.templates), ", ".join(row.topics))
    console.print(table)


@webhook.command("remove")
@municipality_option
@click.argument("endpoint_id", type=click.UUID)
def webhook_remove(slug: str, endpoint_id: uuid.UUID) -> None:
    """Stop sending to an endpoint (what is not sent yet is skipped)."""

    async def work(_p: Platform, _m: Municipality, session: AsyncSession) -> None:
        await webhooks.remove_webhook(session, endpoint_id, actor=ACTOR)

    _in(slug, work)
    click.echo(f"{slug}: webhook {endpoint_id} removed")


# --- sender, deliveries -----------------------------------------------------------------------------------------


@notify.command("sender")
@municipality_option
@click.option(
    "--email-from", metavar="ADDRESS", help="The sender of the municipality's email ('三木町 <info@...>')."
)
@click.option("--clear", is_flag=True, help="Use the deployment's TSUNAGU_SMTP_FROM again.")
def sender_(slug: str, email_from: str | None, clear: bool) -> None:
    """Show or set the municipality's email sender address."""
    if email_from is not None and clear:
        raise click.UsageError("give --email-from ADDRESS or --clear, not both")

    async def work(_p: Platform, _m: Municipality, session: AsyncSession) -> tuple[str | None, bool]:
        if email_from is None and not clear:
            return await sender.email_from(session), False
        changed = await sender.set_email_from(session, None if clear else email_from, actor=ACTOR)
        return await sender.email_from(session), changed

    current, changed = _in(slug, work)
    shown = current or "the deployment's TSUNAGU_SMTP_FROM, named after the municipality"
    if email_from is None and not clear:
        click.echo(f"{slug} sends email as {shown}")
    else:
        click.echo(f"{slug} {'now' if changed else 'already'} sends email as {shown}")


@notify.command()
@municipality_option
@click.option(
    "--status",
    type=click.Choice(["pending", "retrying", "sent", "skipped", "failed"]),
    help="Only deliveries in this state.",
)
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@json_option
def deliveries(slug: str, status: str | None, limit: int, as_json: bool) -> None:
    """The latest deliveries (email, webhooks, plugin channels) and how each went."""

    async def work(_p: Platform, _m: Municipality, session: AsyncSession) -> list[dict[str, Any]]:
        query = select(Delivery).order_by(Delivery.created_at.desc(), Delivery.id).limit(limit)
        if status is not None:
            query = query.where(Delivery.status == status)
        return [
            {
                "id": str(d.id),
                "channel": d.channel,
                "status": d.status,
                "attempts": d.attempts,
                "created_at": d.created_at.isoformat(),
                "sent_at": d.sent_at.isoformat() if d.sent_at else None,
                "next_attempt_at": d.next_attempt_at.isoformat() if d.next_attempt_at else None,
                "last_error": d.last_error,
            }
            for d in await session.scalars(query)
        ]

    rows = _in(slug, work)
    if as_json:
        print_json(rows)
        return
    table = Table("id", "channel", "status", "attempts", "created_at", "last_error")
    for row in rows:
        table.add_row(
            row["id"],
            row["channel"],
            row["status"],
            str(row["attempts"]),
            row["created_at"],
            row["last_error"] or "",
        )
    console.print(table)
