"""Declaring a workflow: every mistake is refused when the Workflow is created, naming the workflow and the
field; a good declaration answers what leaves each state; the Mermaid diagram shows every transition."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Integer, MetaData, Uuid
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from core import Title
from core.db import TenantScoped
from core.exceptions import ImproperlyConfigured, InvalidInput
from core.workflow import Notify, StatefulMixin, Timer, Transition, Workflow, mermaid
from core.workflow.describe import duration
from tests.workflow_plugin import HOLD, Hold


class _Base(DeclarativeBase):
    metadata = MetaData()


class Stateless(TenantScoped, _Base):
    __tablename__ = "unit_workflow_stateless"
    municipality_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)


class Shared(StatefulMixin, _Base):
    """Not tenant-scoped: a workflow over it could move rows of every municipality."""

    __tablename__ = "unit_workflow_shared"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)


class Keyed(TenantScoped, StatefulMixin, _Base):
    __tablename__ = "unit_workflow_keyed"
    municipality_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[int] = mapped_column(Integer, primary_key=True)


T = Title(ja="状態", en="State")
STATES = {"held": T, "confirmed": T, "expired": T}


def declare(**changes: Any) -> Workflow:
    fields: dict[str, Any] = {
        "name": "holds.sample",
        "model": Hold,
        "states": STATES,
        "initial": "held",
        "transitions": (
            Transition("confirm", source=("held",), target="confirmed", permission="holds.confirm"),
            Transition("expire", source=("held",), target="expired"),
        ),
        "timers": (Timer(state="held", after=timedelta(minutes=30), fire="expire"),),
    }
    fields.update(changes)
    return Workflow(**fields)


def step(name: str = "confirm", **changes: Any) -> Transition:
    fields: dict[str, Any] = {"source": ("held",), "target": "confirmed", "permission": "holds.confirm"}
    fields.update(changes)
    return Transition(name, **fields)


EXPIRE = Transition("expire", source=("held",), target="expired")

MISTAKES: dict[str, tuple[Callable[[], Workflow], str]] = {
    "name": (lambda: declare(name="Holds"), "workflow 'Holds': name must look like <plugin>.<name>"),
    "model not stateful": (lambda: declare(model=Stateless), "model: Stateless must inherit"),
    "model not a tenant table": (
        lambda: declare(model=Shared),
        "model: Shared must be a tenant-scoped table",
    ),
    "model without id": (lambda: declare(model=Keyed), "model: Keyed must have an 'id' column"),
    "model not mapped": (lambda: declare(model=dict), "model: must be an ORM model class"),
    "no states": (lambda: declare(states={}), "states: must be a non-empty mapping"),
    "state name": (lambda: declare(states={**STATES, "Held Up": T}), "states['Held Up']: a state name"),
    "state title": (lambda: declare(states={**STATES, "gone": "Gone"}), "states.gone: must be a Title"),
    "initial": (lambda: declare(initial="draft"), "initial: 'draft' is not a state"),
    "unknown source": (
        lambda: declare(transitions=(step(source=("hled",)), EXPIRE)),
        "transitions.confirm.source: 'hled' is not a state (states: held, confirmed, expired)",
    ),
    "source not a tuple": (
        lambda: declare(transitions=(step(source="held"), EXPIRE)),
        "transitions.confirm.source: must be a non-empty tuple of state names",
    ),
    "unknown target": (
        lambda: declare(transitions=(step(target="done"), EXPIRE)),
        "transitions.confirm.target: 'done' is not a state",
    ),
    "duplicate transition": (
        lambda: declare(transitions=(step(), step(), EXPIRE)),
        "transitions.confirm: declared twice",
    ),
    "reserved name": (
        lambda: declare(transitions=(step("start"), EXPIRE)),
        "transitions.start: 'start' is reserved",
    ),
    "permission": (
        lambda: declare(transitions=(step(permission="confirm"), EXPIRE)),
        "transitions.confirm.permission: must be <plugin>.<action> or None",
    ),
    "guard": (lambda: declare(transitions=(step(guard="yes"), EXPIRE)), "transitions.confirm.guard: must be"),
    "notify template": (
        lambda: declare(transitions=(step(notify=(Notify(template="Confirmed", to=lambda o: []),)), EXPIRE)),
        "transitions.confirm.notify[0].template: must be <plugin>.<name>",
    ),
    "timer state": (
        lambda: declare(timers=(Timer(state="paid", after=timedelta(minutes=1), fire="expire"),)),
        "timers[0].state: 'paid' is not a state",
    ),
    "timer transition unknown": (
        lambda: declare(timers=(Timer(state="held", after=timedelta(minutes=1), fire="lapse"),)),
        "timers[0].fire: 'lapse' is not a transition",
    ),
    "timer transition does not leave its state": (
        lambda: declare(timers=(Timer(state="confirmed", after=timedelta(minutes=1), fire="expire"),)),
        "timers[0].fire: 'expire' does not leave 'confirmed'",
    ),
    "timer transition loops back": (
        lambda: declare(
            transitions=(step(), EXPIRE, step("extend", target="held")),
            timers=(Timer(state="held", after=timedelta(minutes=1), fire="extend"),),
        ),
        "timers[0].fire: 'extend' does not leave 'held'",
    ),
    "timer delay": (
        lambda: declare(timers=(Timer(state="held", after=timedelta(0), fire="expire"),)),
        "timers[0].after: must be a positive timedelta",
    ),
    "duplicate timer": (
        lambda: declare(timers=(Timer(state="held", after=timedelta(minutes=1), fire="expire"),) * 2),
        "timers[1]: a timer firing 'expire' from 'held' is declared twice",
    ),
}


@pytest.mark.parametrize("mistake", sorted(MISTAKES))
def test_a_mistake_is_refused_naming_the_workflow_and_the_field(mistake: str) -> None:
    make, fragment = MISTAKES[mistake]
    with pytest.raises(ImproperlyConfigured) as caught:
        make()
    message = caught.value.detail
    assert fragment in message, message
    if mistake != "name":
        assert message.startswith("workflow holds.sample: "), message


def test_a_good_declaration_answers_what_leaves_each_state() -> None:
    workflow = declare()
    assert (workflow.plugin, workflow.target_type) == ("holds", "sample")
    assert workflow.leaving("held") == ["confirm", "expire"]
    assert workflow.leaving("confirmed") == []
    assert [t.fire for t in workflow.timers_for("held")] == ["expire"]
    with pytest.raises(InvalidInput, match="holds.sample has no transition 'approve'"):
        workflow.transition("approve")


names = st.sampled_from(["a", "b", "c", "d"])


@settings(max_examples=50)
@given(
    states=st.sets(names, min_size=1),
    moves=st.lists(st.tuples(st.lists(names, min_size=1, max_size=2, unique=True), names), max_size=5),
)
def test_a_declaration_is_accepted_exactly_when_every_transition_names_known_states(
    states: set[str], moves: list[tuple[list[str], str]]
) -> None:
    initial = sorted(states)[0]
    transitions = tuple(
        Transition(f"t{i}", source=tuple(source), target=target) for i, (source, target) in enumerate(moves)
    )
    valid = all(set(source) <= states and target in states for source, target in moves)
    declared = {"name": "holds.sample", "model": Hold, "initial": initial, "transitions": transitions}
    if valid:
        workflow = Workflow(states=dict.fromkeys(states, T), **declared)
        for state in states:
            assert workflow.leaving(state) == [f"t{i}" for i, (s, _) in enumerate(moves) if state in s]
    else:
        with pytest.raises(
            ImproperlyConfigured, match=r"^workflow holds\.sample: transitions\.t\d+\.(source|target): "
        ):
            Workflow(states=dict.fromkeys(states, T), **declared)


# --- describing -----------------------------------------------------------------------------------------------


def test_mermaid_shows_states_every_transition_the_timers_and_the_ends() -> None:
    assert mermaid(HOLD) == (
        "stateDiagram-v2\n"
        '    state "仮押さえ / Held" as held\n'
        '    state "確定 / Confirmed" as confirmed\n'
        '    state "取消 / Cancelled" as cancelled\n'
        '    state "期限切れ / Expired" as expired\n'
        "    [*] --> held\n"
        "    held --> confirmed: confirm\n"
        "    held --> cancelled: cancel\n"
        "    confirmed --> cancelled: cancel\n"
        "    held --> expired: expire after 30m\n"
        "    cancelled --> [*]\n"
        "    expired --> [*]\n"
    )


def test_mermaid_joins_the_transitions_between_two_states_in_one_arrow() -> None:
    lapse = Transition("lapse", source=("held",), target="expired")
    lines = mermaid(declare(transitions=(step(), step("approve"), EXPIRE, lapse))).splitlines()
    assert "    held --> confirmed: confirm, approve" in lines
    assert "    held --> expired: expire after 30m, lapse (platform)" in lines
    assert [line for line in lines if "-->" in line and "[*]" in line] == [
        "    [*] --> held",
        "    confirmed --> [*]",
        "    expired --> [*]",
    ]


@given(seconds=st.integers(min_value=0, max_value=400 * 86400))
def test_duration_is_exact_and_uses_the_largest_units(seconds: int) -> None:
    text = duration(timedelta(seconds=seconds))
    parts = re.findall(r"(\d+)([dhms])", text)
    assert "".join(a + u for a, u in parts) == text
    sizes = {"d": 86400, "h": 3600, "m": 60, "s": 1}
    assert sum(int(a) * sizes[u] for a, u in parts) == seconds
    assert [u for _, u in parts] == sorted(
        {u for _, u in parts}, key="dhms".index
    )  # each unit once, in order
    assert (
        all(int(a) < {"d": 10**9, "h": 24, "m": 60, "s": 60}[u] and int(a) > 0 for a, u in parts)
        or text == "0s"
    )
