"""A throwaway plugin for the workflow tests: ``holds``, seats held for a while, confirmed by staff or expired.

Its table lives on a metadata of its own (not the shared one the migrations check), created by
:func:`create_tables` with the same row-level security a migration gives a tenant table.

States: held (the initial state) -> confirmed | cancelled | expired; confirmed -> cancelled. A timer expires a
hold nobody confirmed within 30 minutes. Confirming needs ``holds.confirm`` (staff; scope ``holds:confirm``) and
is refused for more than four seats, and tells the holder (template ``holds.confirmed``, in
``tests/workflow_plugin_templates/``); cancelling needs ``holds.cancel`` (residents too).
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.params import FromPath, JSONBody
from sqlalchemy import Integer, MetaData, Uuid, inspect, select, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from core import Plugin, PluginMeta, Title, hookimpl
from core.db import TenantScoped
from core.db.base import NAMING_CONVENTION
from core.db.rls import enable_tenant_isolation
from core.http.dependencies import DbSession, PlatformDep
from core.identity import Permission
from core.identity.authn import authenticate
from core.platform import Platform
from core.workflow import Notify, StatefulMixin, Timer, Transition, Workflow, fire, start

TABLE = "test_workflow_holds"
MAX_SEATS = 4
HOLD_FOR = timedelta(minutes=30)


class HoldsBase(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Hold(TenantScoped, StatefulMixin, HoldsBase):
    __tablename__ = TABLE

    municipality_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    """No foreign key: the municipalities table is on the shared metadata, not this one."""
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    seats: Mapped[int] = mapped_column(Integer)
    holder_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)


async def at_most_four_seats(session: Any, hold: Hold, actor: Any) -> str | None:
    if hold.seats > MAX_SEATS:
        return f"a hold of more than {MAX_SEATS} seats is confirmed at the counter, this one has {hold.seats}"
    return None


def _holder(hold: Hold) -> list[uuid.UUID]:
    return [hold.holder_id] if hold.holder_id is not None else []


HOLD = Workflow(
    name="holds.hold",
    model=Hold,
    states={
        "held": Title(ja="仮押さえ", en="Held"),
        "confirmed": Title(ja="確定", en="Confirmed"),
        "cancelled": Title(ja="取消", en="Cancelled"),
        "expired": Title(ja="期限切れ", en="Expired"),
    },
    initial="held",
    transitions=(
        Transition(
            "confirm",
            source=("held",),
            target="confirmed",
            permission="holds.confirm",
            guard=at_most_four_seats,
            notify=(Notify(template="holds.confirmed", to=_holder, context=lambda h: {"seats": h.seats}),),
        ),
        Transition("cancel", source=("held", "confirmed"), target="cancelled", permission="holds.cancel"),
        Transition("expire", source=("held",), target="expired"),
    ),
    timers=(Timer(state="held", after=HOLD_FOR, fire="expire"),),
)

PERMISSIONS = (
    Permission(
        name="holds.confirm",
        description="Confirm a hold",
        default_roles=("staff", "admin"),
        scope="holds:confirm",
    ),
    Permission(
        name="holds.cancel",
        description="Cancel a hold",
        default_roles=("resident", "staff", "admin"),
        scope="holds:cancel",
    ),
)


class HoldOut(msgspec.Struct, kw_only=True, frozen=True):
    id: uuid.UUID
    seats: int
    state: str
    version: int


class HoldCreate(msgspec.Struct, kw_only=True, frozen=True):
    seats: int


class FireRequest(msgspec.Struct, kw_only=True, frozen=True):
    expected_version: int | None = None


def out(hold: Hold) -> HoldOut:
    return HoldOut(id=hold.id, seats=hold.seats, state=hold.state, version=hold.state_version)


class HoldController(Controller):
    path = "/"

    @post("/", summary="Hold seats")
    async def create(
        self,
        request: Request[Any, Any, Any],
        platform: PlatformDep,
        db_session: DbSession,
        data: JSONBody[HoldCreate],
    ) -> HoldOut:
        principal = await authenticate(platform, request)
        hold = Hold(seats=data.seats, holder_id=principal.account_id)
        await start(db_session, HOLD, hold, actor=principal)
        return out(hold)

    @get("/{hold_id:uuid}", summary="One hold")
    async def show(self, db_session: DbSession, hold_id: FromPath[uuid.UUID]) -> HoldOut:
        hold = await db_session.scalar(select(Hold).where(Hold.id == hold_id))
        if hold is None:
            from core.exceptions import NotFound

            raise NotFound(f"no hold {hold_id}")
        return out(hold)

    @post("/{hold_id:uuid}/{transition:str}", status_code=200, summary="Fire a transition")
    async def transition(
        self,
        request: Request[Any, Any, Any],
        platform: PlatformDep,
        db_session: DbSession,
        hold_id: FromPath[uuid.UUID],
        transition: FromPath[str],
        data: JSONBody[FireRequest | None] = None,
    ) -> HoldOut:
        principal = await authenticate(platform, request)
        expected = data.expected_version if data is not None else None
        hold = await fire(db_session, HOLD, hold_id, transition, actor=principal, expected_version=expected)
        return out(hold)


class HoldsPlugin(Plugin):
    meta = PluginMeta(name="holds", version="0.1.0", title=Title(ja="仮押さえ", en="Holds"))

    @hookimpl
    def register_permissions(self) -> list[Permission]:
        return list(PERMISSIONS)

    @hookimpl
    def register_workflows(self) -> list[Workflow]:
        return [HOLD]

    @hookimpl
    def register_routes(self) -> list[Any]:
        return [HoldController]

    @hookimpl
    def register_notification_templates(self) -> list[Path]:
        return [Path(__file__).parent / "workflow_plugin_templates"]


plugin = HoldsPlugin()


async def create_tables(platform: Platform) -> None:
    """Create the holds table (with row-level security on PostgreSQL) unless it is there already."""

    class _Op:  # what enable_tenant_isolation needs of Alembic's ``op``
        def __init__(self, connection: Any) -> None:
            self.connection = connection

        def get_bind(self) -> Any:
            return self.connection

        def execute(self, sql: str) -> None:
            self.connection.execute(text(sql))

    def create(connection: Any) -> None:
        if inspect(connection).has_table(TABLE):
            return
        HoldsBase.metadata.create_all(connection)
        enable_tenant_isolation(_Op(connection), TABLE)

    async with platform.engine.begin() as connection:
        await connection.run_sync(create)


async def drop_tables(platform: Platform) -> None:
    """Drop the holds table again, so the database left for the next test holds only what the migrations made."""
    async with platform.engine.begin() as connection:
        await connection.run_sync(HoldsBase.metadata.drop_all)
