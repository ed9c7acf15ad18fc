"""Sessions bound to one municipality, and platform sessions that see every municipality.

A *tenant session* carries the municipality it is bound to in ``session.info``. For it:

- every ORM SELECT, UPDATE and DELETE touching a :class:`~core.db.base.TenantScoped` table gets
  ``municipality_id = <bound>`` added (``with_loader_criteria``), relationship and column loads included;
- every new tenant-scoped object gets ``municipality_id`` stamped, and one that names another municipality,
  or an attempt to move a row to another municipality, raises :class:`~core.exceptions.CrossTenantAccess`;
- on PostgreSQL each transaction starts with ``set_config('tsunagu.municipality_id', …, true)`` so the
  row-level security policies (see ``core.db.rls``) hold even for raw SQL.

A *platform session* is for the few places that work across municipalities (loading the tenant registry,
migrations, the CLI's cross-municipality listings). It sets ``tsunagu.platform = on`` on PostgreSQL. A session
that is neither sees no tenant rows at all on PostgreSQL: a forgotten binding returns nothing.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import ORMExecuteState, Session, with_loader_criteria

from core.db.base import TenantScoped
from core.db.engine import READ_ONLY_OPTION, create_engine
from core.exceptions import CrossTenantAccess

MUNICIPALITY_KEY = "tsunagu.municipality_id"
PLATFORM_KEY = "tsunagu.platform"
_SET_CONTEXT = text(
    "SELECT set_config('tsunagu.municipality_id', :municipality, true), "
    "set_config('tsunagu.platform', :platform, true)"
)


def bound_municipality(session: Session | AsyncSession) -> int | None:
    """The municipality id a session is bound to, or ``None`` for platform and unbound sessions."""
    return session.info.get(MUNICIPALITY_KEY)


class SessionFactory:
    """Makes tenant and platform sessions on one engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._maker = async_sessionmaker(engine, expire_on_commit=False)
        self._reader: AsyncEngine | None = None

    async def dispose(self) -> None:
        """Close every pooled connection (the engine's and the platform reader's)."""
        if self._reader is not None:
            await self._reader.dispose()
            self._reader = None
        await self.engine.dispose()

    @asynccontextmanager
    async def tenant(self, municipality_id: int) -> AsyncIterator[AsyncSession]:
        """A session bound to one municipality; commits on success, rolls back on error."""
        if not isinstance(municipality_id, int) or isinstance(municipality_id, bool):
            raise TypeError(f"municipality_id must be an int, got {municipality_id!r}")
        async with self._maker(info={MUNICIPALITY_KEY: municipality_id}) as session:
            async with session.begin():
                yield session

    @asynccontextmanager
    async def platform(self) -> AsyncIterator[AsyncSession]:
        """A session that may see every municipality; use only for genuinely cross-municipality work."""
        async with self._maker(info={PLATFORM_KEY: True}) as session:
            async with session.begin():
                yield session

    @asynccontextmanager
    async def platform_connection(self, *, read_only: bool = False) -> AsyncIterator[AsyncConnection]:
        """A Core connection in a transaction that may see every municipality, with no ORM session around it:
        for the narrow reads of every request (a credential looked up by its hash), where a session's
        bookkeeping would cost more than the query. Commits on success, rolls back on error.

        ``read_only``: the caller only reads. On SQLite the transaction then begins ``DEFERRED`` instead of taking
        the write lock, so the read neither waits for nor holds up the writers (WAL).
        """
        async with self.engine.connect() as conn:
            if read_only:
                await conn.execution_options(**{READ_ONLY_OPTION: True})
            async with conn.begin():
                if conn.dialect.name == "postgresql":
                    await conn.execute(_SET_CONTEXT, {"municipality": "", "platform": "on"})
                yield conn

    @asynccontextmanager
    async def platform_reader(self) -> AsyncIterator[AsyncConnection]:
        """A Core connection for one cross-municipality read outside any transaction of the caller's: a
        credential looked up by its hash on every request.

        On PostgreSQL it comes from a pool of its own whose connections are opened read-only and with the platform
        context (``tsunagu.platform = on``) for their whole life, in autocommit: a read is one round trip, where a
        :meth:`platform_connection` adds ``BEGIN``, ``set_config`` and ``COMMIT``. Those connections serve nothing
        else, so the setting cannot reach a tenant's work. On SQLite it is ``platform_connection(read_only=True)``.
        """
        if self.engine.dialect.name != "postgresql":
            async with self.platform_connection(read_only=True) as conn:
                yield conn
            return
        if self._reader is None:
            self._reader = _platform_reader_engine(self.engine)
        async with self._reader.connect() as conn:
            yield conn

    @asynccontextmanager
    async def unbound(self) -> AsyncIterator[AsyncSession]:
        """A session bound to nothing: on PostgreSQL it sees no tenant rows (used by tests to prove that)."""
        async with self._maker() as session:
            async with session.begin():
                yield session


PLATFORM_READERS = 4
"""Connections of a process's platform reader pool. A credential read holds one for a single round trip, so a
few serve many concurrent requests; they queue for a connection rather than open and close extra ones."""


def _platform_reader_engine(engine: AsyncEngine) -> AsyncEngine:
    settings = {
        "tsunagu.platform": "on",
        "tsunagu.municipality_id": "",
        "default_transaction_read_only": "on",
    }
    return create_engine(
        engine.url.render_as_string(hide_password=False),
        isolation_level="AUTOCOMMIT",
        connect_args={"server_settings": settings},
        pool_size=PLATFORM_READERS,
        max_overflow=0,
    )


@event.listens_for(Session, "after_begin")
def _set_rls_context(session: Session, transaction: Any, connection: Any) -> None:
    # A savepoint keeps the settings of the transaction around it, so only the outermost one sets them.
    if connection.dialect.name != "postgresql" or transaction.nested:
        return
    municipality_id = session.info.get(MUNICIPALITY_KEY)
    platform = "on" if session.info.get(PLATFORM_KEY) else "off"
    connection.execute(
        _SET_CONTEXT,
        {"municipality": "" if municipality_id is None else str(municipality_id), "platform": platform},
    )


@event.listens_for(Session, "do_orm_execute")
def _filter_by_municipality(state: ORMExecuteState) -> None:
    municipality_id = state.session.info.get(MUNICIPALITY_KEY)
    if municipality_id is None:
        return
    if state.is_insert:
        _check_orm_insert(state, municipality_id)
        return
    if state.is_select or state.is_update or state.is_delete:
        state.statement = state.statement.options(_tenant_criteria(municipality_id))


@functools.lru_cache(maxsize=256)
def _tenant_criteria(municipality_id: int) -> Any:
    """The ``municipality_id = <bound>`` criteria for every tenant-scoped entity, made once per municipality
    (the option is immutable, and making it is a tenth of a small query's cost)."""
    return with_loader_criteria(
        TenantScoped, lambda cls: cls.municipality_id == municipality_id, include_aliases=True
    )


def _check_orm_insert(state: ORMExecuteState, municipality_id: int) -> None:
    mapper = state.bind_mapper
    if mapper is None or not issubclass(mapper.class_, TenantScoped):
        return
    params = state.parameters
    rows: list[Any] = params if isinstance(params, list) else [params] if params else []
    # Values given with .values(...) live on the statement (SQLAlchemy has no public reader for them).
    statement = state.statement
    given = [getattr(statement, "_values", None) or {}]
    for batch in getattr(statement, "_multi_values", ()):
        given.extend(batch)
    rows.extend({_key_name(k): _literal(v) for k, v in values.items()} for values in given if values)
    for row in rows:
        value = row.get("municipality_id") if isinstance(row, dict) else None
        if value != municipality_id:
            raise CrossTenantAccess(
                f"insert into {mapper.local_table} must name municipality_id={municipality_id}, got {value!r}"
            )


def _key_name(key: Any) -> str:
    return key if isinstance(key, str) else getattr(key, "key", str(key))


def _literal(value: Any) -> Any:
    return getattr(value, "value", value)  # a BindParameter carries its value


@event.listens_for(Session, "before_flush")
def _stamp_municipality(session: Session, _context: Any, _instances: Any) -> None:
    municipality_id = session.info.get(MUNICIPALITY_KEY)
    if municipality_id is None:
        return
    for obj in session.new:
        if isinstance(obj, TenantScoped):
            current = obj.municipality_id
            if current is None:
                obj.municipality_id = municipality_id
            elif current != municipality_id:
                raise CrossTenantAccess(
                    f"{type(obj).__name__} for municipality {current} cannot be written by a session bound "
                    f"to municipality {municipality_id}"
                )
    for obj in session.dirty:
        if isinstance(obj, TenantScoped) and obj.municipality_id != municipality_id:
            raise CrossTenantAccess(
                f"{type(obj).__name__} cannot be moved to municipality {obj.municipality_id} by a session bound "
                f"to municipality {municipality_id}"
            )
    for obj in session.deleted:
        if isinstance(obj, TenantScoped) and obj.municipality_id != municipality_id:
            raise CrossTenantAccess(f"{type(obj).__name__} of another municipality cannot be deleted here")
