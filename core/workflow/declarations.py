"""What a plugin declares: a :class:`Workflow` of states, :class:`Transition` s, :class:`Timer` s and
:class:`Notify` s, over an ORM model carrying :class:`StatefulMixin`.

Everything is checked when the :class:`Workflow` is created, so a mistake stops the plugin at import (or at
start-up, where the registry adds the checks that need the other plugins): an error names the workflow and the
field, e.g. ``workflow booking.reservation: timers[0].fire: 'confirm' does not leave 'held'``.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import KW_ONLY, dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import TenantScoped
from core.exceptions import ImproperlyConfigured, InvalidInput
from core.plugins.base import Title

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from core.identity.principal import Principal

WORKFLOW_NAME = re.compile(r"[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*")
WORD = re.compile(r"[a-z][a-z0-9_]*")
PERMISSION = re.compile(r"[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*")
TEMPLATE = re.compile(r"[a-z][a-z0-9_]*\.[a-z][a-z0-9_.]*")
MAX_STATE = 32
"""The length of :attr:`StatefulMixin.state`."""
MAX_ACTION = 80
"""The audit action is ``<workflow name>_<transition>``; the audit log takes actions up to this long."""
START = "start"
"""The audit action suffix of :func:`core.workflow.start`, so no transition may take this name."""

Guard = Callable[["AsyncSession", Any, "Principal | None"], Awaitable[str | None] | str | None]
"""``(session, obj, actor) -> reason or None``: a reason refuses the transition (422), ``None`` lets it pass."""


class StatefulMixin:
    """Mixed into a plugin's ORM model to put it under a workflow; the plugin's migration adds both columns.

    Only :func:`core.workflow.start` and :func:`core.workflow.fire` change them.
    """

    state: Mapped[str] = mapped_column(sa.String(MAX_STATE))
    state_version: Mapped[int] = mapped_column(sa.Integer)
    """1 when started, one more per transition: ``fire`` applies a transition only to the version it read."""


@dataclass(frozen=True, kw_only=True, eq=False)
class Notify:
    """A notification queued (``core.notifications.notify``) when the transition commits."""

    template: str
    """``<plugin>.<name>`` or ``core.<name>``."""
    to: Callable[[Any], Iterable[uuid.UUID] | None]
    """The account ids to tell, from the object after the transition; none: nothing is queued."""
    context: Callable[[Any], Mapping[str, Any]] | None = None
    """Extra template variables from the object (references, not documents), over the defaults (``workflow``,
    ``id``, ``transition``, ``from_state``, ``state``, ``version``, ``data``)."""
    channels: tuple[str, ...] | None = None
    """Limit to these channels; ``None``: every channel the person's preferences allow."""


@dataclass(frozen=True, eq=False)
class Transition:
    """A named move from any of ``source`` to ``target``."""

    name: str
    _: KW_ONLY
    source: tuple[str, ...]
    target: str
    permission: str | None = None
    """Who may fire it (``<plugin>.<action>``, declared through ``register_permissions``); ``None``: only the
    platform (timers, jobs: ``actor=None``)."""
    guard: Guard | None = None
    notify: tuple[Notify, ...] = ()


@dataclass(frozen=True, kw_only=True, eq=False)
class Timer:
    """Fire transition ``fire`` once the object has been in ``state`` for ``after``, unless it moved on meanwhile."""

    state: str
    after: timedelta
    fire: str


@dataclass(frozen=True, kw_only=True, eq=False)
class Workflow:
    """A state machine over ``model``, run by the core. Checked when created (see the module docstring)."""

    name: str
    """``<plugin>.<name>``; the audit log records ``<plugin>.<name>_<transition>`` on ``<name>`` targets."""
    model: type[Any]
    states: Mapping[str, Title]
    initial: str
    transitions: tuple[Transition, ...] = ()
    timers: tuple[Timer, ...] = ()
    _by_name: dict[str, Transition] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        for attribute in ("transitions", "timers"):
            value = getattr(self, attribute)
            if isinstance(value, list):
                object.__setattr__(self, attribute, tuple(value))
        object.__setattr__(
            self, "states", dict(self.states) if isinstance(self.states, Mapping) else self.states
        )
        _check(self)
        object.__setattr__(self, "_by_name", {t.name: t for t in self.transitions})

    @property
    def plugin(self) -> str:
        """The plugin the name says declares it."""
        return self.name.split(".", 1)[0]

    @property
    def target_type(self) -> str:
        """What its objects are called in the audit log: the part of the name after the plugin's."""
        return self.name.split(".", 1)[1]

    def transition(self, name: str) -> Transition:
        """:raises InvalidInput: no transition of that name."""
        found = self._by_name.get(name)
        if found is None:
            known = ", ".join(self._by_name) or "none"
            raise InvalidInput(f"{self.name} has no transition {name!r} (transitions: {known})")
        return found

    def leaving(self, state: str) -> list[str]:
        """The transitions whose source includes ``state``, in declaration order."""
        return [t.name for t in self.transitions if state in t.source]

    def timers_for(self, state: str) -> list[Timer]:
        return [t for t in self.timers if t.state == state]


# --- checks ---------------------------------------------------------------------------------------------------


def _check(workflow: Workflow) -> None:
    name = workflow.name
    if not isinstance(name, str) or not WORKFLOW_NAME.fullmatch(name) or len(name) > 60:
        raise ImproperlyConfigured(
            f"workflow {name!r}: name must look like <plugin>.<name> (lower case, at most 60 characters)"
        )

    def fail(where: str, rule: str) -> ImproperlyConfigured:
        return ImproperlyConfigured(f"workflow {name}: {where}: {rule}")

    _check_model(workflow.model, fail)
    states = workflow.states
    if not isinstance(states, dict) or not states:
        raise fail("states", "must be a non-empty mapping of state name -> Title(ja=..., en=...)")
    for state, title in states.items():
        if not isinstance(state, str) or not WORD.fullmatch(state) or len(state) > MAX_STATE:
            raise fail(
                f"states[{state!r}]",
                f"a state name must be a lower-case word of at most {MAX_STATE} characters",
            )
        if not isinstance(title, Title):
            raise fail(f"states.{state}", f"must be a Title(ja=..., en=...), got {type(title).__name__}")
    known = ", ".join(states)
    if workflow.initial not in states:
        raise fail("initial", f"{workflow.initial!r} is not a state (states: {known})")
    _check_transitions(workflow, fail, known)
    _check_timers(workflow, fail)


def _check_model(model: Any, fail: Callable[[str, str], ImproperlyConfigured]) -> None:
    try:
        mapper = sa.inspect(model) if isinstance(model, type) else None
    except sa.exc.NoInspectionAvailable:
        mapper = None
    if mapper is None:
        raise fail("model", f"must be an ORM model class, got {model!r}")
    if not issubclass(model, StatefulMixin):
        raise fail("model", f"{model.__name__} must inherit core.workflow.StatefulMixin")
    if not issubclass(model, TenantScoped):
        raise fail("model", f"{model.__name__} must be a tenant-scoped table (core.db.TenantScoped)")
    if "id" not in {c.key for c in mapper.primary_key}:
        raise fail("model", f"{model.__name__} must have an 'id' column in its primary key")


def _check_transitions(
    workflow: Workflow, fail: Callable[[str, str], ImproperlyConfigured], known: str
) -> None:
    if not isinstance(workflow.transitions, tuple):
        raise fail("transitions", "must be a tuple of Transition")
    seen: set[str] = set()
    for index, step in enumerate(workflow.transitions):
        if not isinstance(step, Transition):
            raise fail(f"transitions[{index}]", f"must be a Transition, got {type(step).__name__}")
        where = f"transitions.{step.name}" if isinstance(step.name, str) else f"transitions[{index}]"
        if not isinstance(step.name, str) or not WORD.fullmatch(step.name):
            raise fail(f"transitions[{index}].name", f"must be a lower-case word, got {step.name!r}")
        if step.name == START:
            raise fail(where, f"{START!r} is reserved (the audit action of starting a workflow)")
        if len(f"{workflow.name}_{step.name}") > MAX_ACTION:
            raise fail(where, f"'{workflow.name}_{step.name}' is longer than {MAX_ACTION} characters")
        if step.name in seen:
            raise fail(where, "declared twice")
        seen.add(step.name)
        if not isinstance(step.source, tuple) or not step.source:
            raise fail(f"{where}.source", f"must be a non-empty tuple of state names, got {step.source!r}")
        for state in step.source:
            if state not in workflow.states:
                raise fail(f"{where}.source", f"{state!r} is not a state (states: {known})")
        if len(set(step.source)) != len(step.source):
            raise fail(f"{where}.source", "names a state twice")
        if step.target not in workflow.states:
            raise fail(f"{where}.target", f"{step.target!r} is not a state (states: {known})")
        if step.permission is not None and not (
            isinstance(step.permission, str) and PERMISSION.fullmatch(step.permission)
        ):
            raise fail(f"{where}.permission", f"must be <plugin>.<action> or None, got {step.permission!r}")
        if step.guard is not None and not callable(step.guard):
            raise fail(f"{where}.guard", "must be an async function (session, obj, actor) -> reason or None")
        _check_notify(step, where, fail)


def _check_notify(step: Transition, where: str, fail: Callable[[str, str], ImproperlyConfigured]) -> None:
    if not isinstance(step.notify, tuple):
        raise fail(f"{where}.notify", "must be a tuple of Notify")
    for index, notify in enumerate(step.notify):
        at = f"{where}.notify[{index}]"
        if not isinstance(notify, Notify):
            raise fail(at, f"must be a Notify, got {type(notify).__name__}")
        if not isinstance(notify.template, str) or not TEMPLATE.fullmatch(notify.template):
            raise fail(f"{at}.template", f"must be <plugin>.<name>, got {notify.template!r}")
        if not callable(notify.to):
            raise fail(f"{at}.to", "must be a function obj -> account ids")
        if notify.context is not None and not callable(notify.context):
            raise fail(f"{at}.context", "must be a function obj -> mapping, or None")


def _check_timers(workflow: Workflow, fail: Callable[[str, str], ImproperlyConfigured]) -> None:
    if not isinstance(workflow.timers, tuple):
        raise fail("timers", "must be a tuple of Timer")
    by_name = {t.name: t for t in workflow.transitions}
    seen: set[tuple[str, str]] = set()
    for index, timer in enumerate(workflow.timers):
        where = f"timers[{index}]"
        if not isinstance(timer, Timer):
            raise fail(where, f"must be a Timer, got {type(timer).__name__}")
        if timer.state not in workflow.states:
            raise fail(
                f"{where}.state", f"{timer.state!r} is not a state (states: {', '.join(workflow.states)})"
            )
        if not isinstance(timer.after, timedelta) or timer.after <= timedelta(0):
            raise fail(f"{where}.after", f"must be a positive timedelta, got {timer.after!r}")
        step = by_name.get(timer.fire)
        if step is None:
            raise fail(
                f"{where}.fire", f"{timer.fire!r} is not a transition (transitions: {', '.join(by_name)})"
            )
        if timer.state not in step.source or step.target == timer.state:
            raise fail(f"{where}.fire", f"{timer.fire!r} does not leave {timer.state!r}")
        if (timer.state, timer.fire) in seen:
            raise fail(where, f"a timer firing {timer.fire!r} from {timer.state!r} is declared twice")
        seen.add((timer.state, timer.fire))
