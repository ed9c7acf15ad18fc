"""Collecting workflows at start-up (hook ``register_workflows``): what every platform of the process sees, and
plugins that declare them wrongly left out as broken, with their permissions, while the rest run."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Integer, MetaData, Uuid
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from core import Plugin, PluginMeta, Title, hookimpl
from core.db import TenantScoped
from core.identity import Permission
from core.platform import Platform, create_platform
from core.workflow import Notify, StatefulMixin, Timer, Transition, Workflow
from tests import workflow_plugin
from tests.conftest import test_settings as settings_for
from tests.workflow_plugin import HOLD, Hold


class _Base(DeclarativeBase):
    metadata = MetaData()


class Ticket(TenantScoped, StatefulMixin, _Base):
    __tablename__ = "unit_workflow_tickets"
    municipality_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)


OPEN = Title(ja="受付", en="Open")
CLOSED = Title(ja="完了", en="Closed")


def ticket_workflow(name: str = "tickets.ticket", model: Any = Ticket, **step: Any) -> Workflow:
    close: dict[str, Any] = {"source": ("open",), "target": "closed", "permission": "tickets.close", **step}
    return Workflow(
        name=name,
        model=model,
        states={"open": OPEN, "closed": CLOSED},
        initial="open",
        transitions=(Transition("close", **close), Transition("lapse", source=("open",), target="closed")),
        timers=(Timer(state="open", after=timedelta(days=1), fire="lapse"),),
    )


def tickets_plugin(declare: Callable[[], list[Any]]) -> Plugin:
    class Tickets(Plugin):
        meta = PluginMeta(name="tickets", version="1.0", title=Title(ja="t", en="t"))

        @hookimpl
        def register_permissions(self) -> list[Permission]:
            return [Permission(name="tickets.close", description="Close a ticket", scope="tickets:close")]

        @hookimpl
        def register_workflows(self) -> list[Any]:
            return declare()

    return Tickets()


MakePlatform = Callable[..., Awaitable[Platform]]


@pytest.fixture
async def make_platform(tmp_path: Path) -> AsyncIterator[MakePlatform]:
    made: list[Platform] = []

    async def make(*extra: Plugin) -> Platform:
        platform = create_platform(
            settings_for(f"sqlite+aiosqlite:///{tmp_path / 'unused.sqlite3'}"),
            extra_plugins=extra,
            use_entry_points=False,
        )
        made.append(platform)
        return platform

    try:
        yield make
    finally:
        for platform in made:
            await platform.close()


async def test_hook_register_workflows(make_platform: MakePlatform) -> None:
    platform = await make_platform(workflow_plugin.plugin, tickets_plugin(lambda: [ticket_workflow()]))
    assert [w.name for w in platform.workflows] == ["holds.hold", "tickets.ticket"]
    assert platform.workflows.get("holds.hold") is HOLD
    assert platform.workflows.owner("tickets.ticket") == "tickets"
    # a second Platform on the same plugins (as the job runner makes) sees the same workflows
    twin = Platform(platform.settings, platform.sessions, platform.plugins)
    assert twin.workflows is platform.workflows


BROKEN: dict[str, tuple[Callable[[], list[Any]], str]] = {
    "another plugin's name": (
        lambda: [ticket_workflow(name="holds.ticket")],
        "workflow holds.ticket: name must start with 'tickets.'",
    ),
    "undeclared permission": (
        lambda: [ticket_workflow(permission="tickets.shut")],
        "workflow tickets.ticket: transitions.close.permission: 'tickets.shut' is not declared by any plugin",
    ),
    "another plugin's template": (
        lambda: [ticket_workflow(notify=(Notify(template="holds.closed", to=lambda t: []),))],
        "transitions.close.notify[0].template: must start with 'tickets.' or 'core.', got 'holds.closed'",
    ),
    "a model that already runs a workflow": (
        lambda: [ticket_workflow(model=Hold)],
        "workflow tickets.ticket: model Hold already runs workflow holds.hold",
    ),
    "the same name twice": (
        lambda: [ticket_workflow(), ticket_workflow()],
        "workflow tickets.ticket: name already declared by tickets",
    ),
    "not a workflow": (lambda: ["tickets.ticket"], "must return core.workflow.Workflow objects, got str"),
    "a declaration error": (
        lambda: [ticket_workflow(source=("opn",))],
        "workflow tickets.ticket: transitions.close.source: 'opn' is not a state",
    ),
}


@pytest.mark.parametrize("mistake", sorted(BROKEN))
async def test_a_plugin_declaring_a_workflow_wrongly_is_left_out_with_its_permissions(
    make_platform: MakePlatform, mistake: str
) -> None:
    declare, reason = BROKEN[mistake]
    platform = await make_platform(workflow_plugin.plugin, tickets_plugin(declare))
    assert platform.plugins.broken["tickets"].startswith("register_workflows: ")
    assert reason in platform.plugins.broken["tickets"]
    assert "tickets" not in platform.plugins.plugins
    assert platform.plugins.pm.get_plugin("tickets") is None
    assert "tickets.close" not in platform.permissions.permissions
    assert "tickets:close" not in platform.permissions.scopes
    assert [w.name for w in platform.workflows] == ["holds.hold"]
    assert "holds.confirm" in platform.permissions.permissions
