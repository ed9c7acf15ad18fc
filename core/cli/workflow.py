"""``tsunagu workflow``: the state machines plugins declare, as tables, JSON or a Mermaid diagram.

Both commands read only what the loaded plugins declare: no database is opened.
"""

from __future__ import annotations

import click
from rich.table import Table

from core.cli.runtime import console, json_option, print_json, run_async
from core.platform import Platform
from core.workflow import WorkflowInfo, describe, mermaid


@click.group()
def workflow() -> None:
    """Workflows declared by plugins: states, transitions, timers."""


@workflow.command("list")
@json_option
def list_(as_json: bool) -> None:
    """Every workflow: its plugin, how many states, its transitions."""

    async def work(platform: Platform) -> None:
        registry = platform.workflows
        rows = [
            {
                "name": w.name,
                "plugin": registry.owner(w.name),
                "states": len(w.states),
                "transitions": [t.name for t in w.transitions],
            }
            for w in registry
        ]
        broken = [
            {"name": name, "reason": reason}
            for name, reason in sorted(platform.plugins.broken.items())
            if reason.startswith("register_workflows:")
        ]
        if as_json:
            print_json({"workflows": rows, "broken": broken})
            return
        if not rows:
            console.print("no workflows declared by the loaded plugins")
        else:
            table = Table("workflow", "plugin", "states", "transitions")
            for row in rows:
                table.add_row(row["name"], row["plugin"], str(row["states"]), ", ".join(row["transitions"]))
            console.print(table)
        for entry in broken:
            console.print(f"[red]broken[/red] {entry['name']}: {entry['reason']}")

    run_async(work, refresh=False)


@workflow.command()
@click.argument("name")
@click.option("--mermaid", "as_mermaid", is_flag=True, help="Print a Mermaid stateDiagram-v2 for the docs.")
@json_option
def show(name: str, as_mermaid: bool, as_json: bool) -> None:
    """One workflow: states (ja/en), transitions with who may fire them, guards, notifications, timers."""
    if as_mermaid and as_json:
        raise click.UsageError("--mermaid and --json cannot be combined")

    async def work(platform: Platform) -> None:
        found = platform.workflows.get(name)
        if as_mermaid:
            click.echo(mermaid(found), nl=False)
            return
        info = describe(found, platform.workflows.owner(name))
        if as_json:
            print_json(info)
            return
        _print(info)

    run_async(work, refresh=False)


def _print(info: WorkflowInfo) -> None:
    console.print(f"[bold]{info.name}[/bold] (plugin {info.plugin}, table {info.table})")
    states = Table("state", "ja", "en", "")
    for state in info.states:
        mark = "initial" if state.initial else "final" if state.final else ""
        states.add_row(state.name, state.title.ja, state.title.en, mark)
    console.print(states)
    transitions = Table("transition", "from → to", "permission", "guard", "notifies")
    for t in info.transitions:
        transitions.add_row(
            t.name,
            f"{', '.join(t.source)} → {t.target}",
            t.permission or "(platform only)",
            t.guard or "",
            ", ".join(t.notify),
        )
    console.print(transitions)
    if info.timers:
        timers = Table("timer: in state", "after", "fires")
        for timer in info.timers:
            timers.add_row(timer.state, timer.after, timer.fire)
        console.print(timers)
