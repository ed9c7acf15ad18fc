"""A workflow described for people: the structure ``tsunagu workflow show`` prints, and a Mermaid diagram."""

from __future__ import annotations

from datetime import timedelta

import msgspec

from core.plugins.base import Title
from core.workflow.declarations import Workflow


class StateInfo(msgspec.Struct, kw_only=True, frozen=True):
    name: str
    title: Title
    initial: bool
    final: bool
    """No transition leaves it."""


class TransitionInfo(msgspec.Struct, kw_only=True, frozen=True):
    name: str
    source: tuple[str, ...]
    target: str
    permission: str | None
    """``None``: the platform only (timers, jobs)."""
    guard: str | None
    """The guard function's name."""
    notify: tuple[str, ...]
    """Templates queued when it happens."""


class TimerInfo(msgspec.Struct, kw_only=True, frozen=True):
    state: str
    after: str
    """A duration: ``30m``, ``1h30m``, ``2d``."""
    after_seconds: int
    fire: str


class WorkflowInfo(msgspec.Struct, kw_only=True, frozen=True):
    name: str
    plugin: str
    table: str
    initial: str
    states: tuple[StateInfo, ...]
    transitions: tuple[TransitionInfo, ...]
    timers: tuple[TimerInfo, ...]


def describe(workflow: Workflow, plugin: str) -> WorkflowInfo:
    return WorkflowInfo(
        name=workflow.name,
        plugin=plugin,
        table=str(workflow.model.__table__.name),
        initial=workflow.initial,
        states=tuple(
            StateInfo(
                name=name, title=title, initial=name == workflow.initial, final=not workflow.leaving(name)
            )
            for name, title in workflow.states.items()
        ),
        transitions=tuple(
            TransitionInfo(
                name=t.name,
                source=t.source,
                target=t.target,
                permission=t.permission,
                guard=None if t.guard is None else getattr(t.guard, "__name__", repr(t.guard)),
                notify=tuple(n.template for n in t.notify),
            )
            for t in workflow.transitions
        ),
        timers=tuple(
            TimerInfo(
                state=t.state,
                after=duration(t.after),
                after_seconds=int(t.after.total_seconds()),
                fire=t.fire,
            )
            for t in workflow.timers
        ),
    )


def duration(value: timedelta) -> str:
    """``30m``, ``1h30m``, ``2d``, ``45s``: the largest units, no zero parts."""
    seconds = int(value.total_seconds())
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        amount, seconds = divmod(seconds, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return "".join(parts) or "0s"


def mermaid(workflow: Workflow) -> str:
    """A ``stateDiagram-v2``: states with their Japanese and English titles, an arrow for each pair of states a
    transition joins, labelled with the transitions' names (a timer's delay, or "(platform)" for one no person
    may fire), the initial state from ``[*]``, final states to ``[*]``."""
    lines = ["stateDiagram-v2"]
    for name, title in workflow.states.items():
        lines.append(f'    state "{_label(title.ja)} / {_label(title.en)}" as {name}')
    lines.append(f"    [*] --> {workflow.initial}")
    arrows: dict[tuple[str, str], list[str]] = {}  # one arrow per pair of states, naming every way along it
    for step in workflow.transitions:
        for source in step.source:
            label = step.name
            due = [duration(t.after) for t in workflow.timers if t.fire == step.name and t.state == source]
            if due:
                label += f" after {due[0]}"
            elif step.permission is None:
                label += " (platform)"
            arrows.setdefault((source, step.target), []).append(label)
    for (source, target), labels in arrows.items():
        lines.append(f"    {source} --> {target}: {', '.join(labels)}")
    for name in workflow.states:
        if not workflow.leaving(name):
            lines.append(f"    {name} --> [*]")
    return "\n".join(lines) + "\n"


def _label(text: str) -> str:
    """Mermaid has no escape for a double quote inside a state description."""
    return text.replace('"', "'")
