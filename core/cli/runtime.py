"""What every CLI command shares: settings, a platform opened and closed around the command, errors, output.

Errors are one line on stderr. Exit codes: 0 done, 1 failed, 2 bad usage or bad input.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click
import msgspec
from rich.console import Console

from core.exceptions import PlatformError
from core.platform import Platform, create_platform
from core.settings import Settings, load_settings
from core.tenancy.registry import Municipality

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

T = TypeVar("T")

console = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 240)
"""Piped output keeps whole table cells (rich would squeeze them to 80 columns); use ``--json`` for scripts."""
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
municipality_option = click.option(
    "--municipality",
    "-m",
    "slug",
    required=True,
    metavar="SLUG",
    help="The municipality (its slug, e.g. miki).",
)


class CliState:
    """Per-invocation state kept on click's context object."""

    def __init__(self) -> None:
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings()
        return self._settings


def state() -> CliState:
    ctx = click.get_current_context()
    obj = ctx.find_object(CliState)
    if obj is None:
        obj = ctx.ensure_object(CliState)
    return obj


def open_platform(settings: Settings | None = None) -> Platform:
    from core.logging import configure_logging

    settings = settings or state().settings
    configure_logging(
        msgspec.structs.replace(settings, log_level="warning") if settings.log_level == "info" else settings
    )
    return create_platform(settings)


def run_async(work: Callable[[Platform], Awaitable[T]], *, refresh: bool = True) -> T:
    """Open a platform, load the tenant snapshot, run ``work``, close: the usual body of a command."""

    async def main() -> T:
        platform = open_platform()
        try:
            if refresh:
                await platform.refresh(force=True)
            return await work(platform)
        finally:
            await platform.close()

    return asyncio.run(main())


def run_for_plugin(
    slug: str, plugin: str, work: Callable[[Platform, Municipality, AsyncSession], Awaitable[T]]
) -> T:
    """Run a plugin command's ``work`` for one municipality, in a session bound to it.

    :raises NotFound: if the municipality is unknown or the plugin is not enabled there.
    """

    async def bound(platform: Platform) -> T:
        municipality = platform.municipality(slug)
        platform.require_enabled(municipality, plugin)
        async with platform.sessions.tenant(municipality.id) as session:
            return await work(platform, municipality, session)

    return run_async(bound)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(msgspec.to_builtins(data), ensure_ascii=False, indent=2) + "\n")


def fail(message: str, code: int = 2) -> None:
    """Print one line on stderr and exit."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


_NO_ARGS_IS_HELP: Any = getattr(click.exceptions, "NoArgsIsHelpError", ())


def handle_errors(invoke: Callable[[], Any]) -> int:
    """Run the CLI; map errors to one line on stderr and the exit code."""
    try:
        invoke()
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.Abort:
        click.echo("error: aborted", err=True)
        return 1
    except _NO_ARGS_IS_HELP as exc:  # a bare group (click >= 8.2 puts its whole help in the message)
        path = exc.ctx.command_path if exc.ctx is not None else "tsunagu"
        click.echo(f"error: missing command (see: {path} --help)", err=True)
        return 2
    except click.UsageError as exc:
        hint = f" (see: {exc.ctx.command_path} --help)" if exc.ctx is not None else ""
        click.echo(f"error: {exc.format_message()}{hint}", err=True)
        return 2
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        return exc.exit_code
    except PlatformError as exc:
        click.echo(f"error: {exc.detail}", err=True)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug: still one line, the traceback only on request
        if os.environ.get("TSUNAGU_DEBUG"):
            raise
        click.echo(
            f"error: unexpected {type(exc).__name__}: {exc} (set TSUNAGU_DEBUG=1 for the traceback)", err=True
        )
        return 1
    return 0
