"""Engines for the two deployment shapes: an SQLite file (embedded) or PostgreSQL (shared)."""

from __future__ import annotations

from pathlib import Path
from time import monotonic
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

READ_ONLY_OPTION = "tsunagu_read_only"
"""Execution option of a connection that only reads: on SQLite its transactions begin without the write lock."""
PING_AFTER_IDLE_SECONDS = 5.0
"""A pooled PostgreSQL connection that sat unused longer than this is pinged before it is handed out."""
_IDLE_SINCE = "tsunagu_idle_since"
_clock = monotonic  # the idle clock (a test moves it on)


def create_engine(database_url: str, **kwargs: Any) -> AsyncEngine:
    """An async engine with the settings each backend needs to behave like the other where it matters.

    SQLite gets foreign keys on, WAL and a busy timeout (several processes share the file); its directory is
    created if missing, so the embedded default starts on a fresh checkout.
    """
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 30}, **kwargs)
        _configure_sqlite(engine)
        return engine
    engine = create_async_engine(url, **kwargs)
    if not kwargs.get("pool_pre_ping"):
        _ping_when_idle(engine)
    return engine


def _ping_when_idle(engine: AsyncEngine) -> None:
    """Check a pooled connection before use only where it may have gone stale.

    SQLAlchemy's ``pool_pre_ping`` costs three round trips (``BEGIN``, a ping, ``ROLLBACK``) on every checkout,
    and a request checks out twice (its credential, then its work). Instead: a connection whose socket the driver
    already saw closed (a restarted or terminating server) is discarded without a round trip, and one that sat idle
    past :data:`PING_AFTER_IDLE_SECONDS` (where a firewall or a failover may have cut it silently) is pinged. A
    connection in steady use, returned moments ago, is handed out as it is, as connection pools such as HikariCP do
    within their "alive bypass" window. Raising :class:`DisconnectionError` makes the pool replace the connection
    and try again.
    """

    @event.listens_for(engine.sync_engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            record.info[_IDLE_SINCE] = _clock()

    @event.listens_for(engine.sync_engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.pop(_IDLE_SINCE, None)
        driver = getattr(dbapi_connection, "driver_connection", None)
        if driver is not None and driver.is_closed():
            raise DisconnectionError("the server closed this pooled connection")
        if idle_since is None or _clock() - idle_since < PING_AFTER_IDLE_SECONDS:
            return  # new, or returned moments ago
        try:
            dbapi_connection.ping()
        except Exception as exc:  # the driver's own error for a dead socket varies
            raise DisconnectionError("a pooled connection failed its ping") from exc


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy emit BEGIN itself so transactions start where the session says (pysqlite quirk).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        # IMMEDIATE takes the write lock up front, so two writers queue instead of deadlocking on upgrade. A
        # connection marked read-only reads a snapshot without the lock (WAL).
        if connection.get_execution_options().get(READ_ONLY_OPTION):
            connection.exec_driver_sql("BEGIN DEFERRED")
        else:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
