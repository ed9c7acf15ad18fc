"""The ``tsunagu`` command: municipalities, plugins, users and roles, database, servers; plus each plugin's own
commands."""

from __future__ import annotations

import sys

import click
import msgspec

from core.cli.apikey import apikey
from core.cli.audit import audit
from core.cli.db import db
from core.cli.keys import keys
from core.cli.municipality import municipality
from core.cli.notify import notify
from core.cli.outbox import outbox
from core.cli.plugin import plugin
from core.cli.role import role
from core.cli.runtime import CliState, handle_errors
from core.cli.server import demo, serve, worker
from core.cli.user import user
from core.cli.workflow import workflow
from core.exceptions import PlatformError
from core.logging import configure_logging
from core.settings import Settings, load_settings


def build_cli() -> click.Group:
    """The command tree; plugins' commands are added under a group named after each plugin."""

    @click.group(context_settings={"help_option_names": ["-h", "--help"]})
    @click.pass_context
    def tsunagu(ctx: click.Context) -> None:
        """tsunagu (つなぐ): a shared digital platform for the municipalities of a region."""
        ctx.ensure_object(CliState)

    for command in (
        municipality,
        plugin,
        user,
        role,
        db,
        serve,
        worker,
        demo,
        apikey,
        keys,
        audit,
        workflow,
        outbox,
        notify,
    ):
        tsunagu.add_command(command)
    for name, commands in plugin_commands().items():
        group = click.Group(name=name, help=f"Commands of the {name} plugin.")
        for command in commands:
            group.add_command(command)
        tsunagu.add_command(group)
    return tsunagu


def plugin_commands() -> dict[str, list[click.Command]]:
    """Ask every loaded plugin for its commands (the plugins are loaded, no database is opened)."""
    from core.plugins.loader import discover
    from core.plugins.manager import create_plugin_manager

    loaded = discover()
    pm = create_plugin_manager(loaded)
    found: dict[str, list[click.Command]] = {}
    for impl in pm.hook.register_cli_commands.get_hookimpls():
        commands = impl.function() or []
        if commands:
            found[impl.plugin_name] = list(commands)
    return found


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    args = sys.argv[1:] if argv is None else argv
    _log_to_stderr()
    cli = build_cli()
    code = handle_errors(lambda: cli.main(args=args, prog_name="tsunagu", standalone_mode=False))
    if argv is None:
        sys.exit(code)
    return code


def _log_to_stderr() -> None:
    """Configure logging before plugins load: a broken plugin's report goes to stderr, never into stdout."""
    try:
        settings = load_settings()
    except PlatformError:  # reported as one line once a command reads the settings
        settings = Settings()
    quiet = settings.log_level == "info"  # as open_platform: no info lines among a command's own output
    configure_logging(msgspec.structs.replace(settings, log_level="warning") if quiet else settings)


if __name__ == "__main__":
    main()
