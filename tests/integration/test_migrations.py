"""Migrations: one Alembic branch for the core and one per plugin, reversible, and in step with the models.

On a fresh SQLite file and a fresh PostgreSQL database: upgrading to every head creates every table of the
shared metadata, downgrading to base removes them all, upgrading again works; and the migrated schema is what
the models declare, so a model changed without a migration fails here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from core.db import Base, create_engine, migrate
from core.db.base import NAMING_CONVENTION
from core.platform import Platform, create_platform
from tests.conftest import PostgresDatabases
from tests.conftest import test_settings as settings_for

T = TypeVar("T")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database with nothing in it (not even ``alembic_version``)."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'fresh.sqlite3'}"
    databases: PostgresDatabases = request.getfixturevalue("postgres_databases")
    return databases.create()


@pytest.fixture
def fresh_platform(fresh_url: str) -> Iterator[Platform]:
    platform = create_platform(settings_for(fresh_url))
    try:
        yield platform
    finally:
        asyncio.run(platform.engine.dispose())


def on_database(url: str, inspect: Callable[[Connection], T]) -> T:
    """Run ``inspect`` on a connection of its own (own engine, own event loop), then close everything."""

    async def run() -> T:
        engine = create_engine(url)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(inspect)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def table_names(conn: Connection) -> set[str]:
    return set(sa.inspect(conn).get_table_names())


def rows(sql: str) -> Callable[[Connection], list[tuple[Any, ...]]]:
    return lambda conn: [tuple(row) for row in conn.execute(sa.text(sql))]


def stored_versions(conn: Connection) -> set[str]:
    return set(MigrationContext.configure(conn).get_current_heads())


def schema_differences(conn: Connection, metadata: sa.MetaData = Base.metadata) -> list[Any]:
    """What autogenerate would put in a new migration to bring the database to ``metadata``."""
    context = MigrationContext.configure(conn, opts={"compare_type": True, "target_metadata": metadata})
    return compare_metadata(context, metadata)


def branch_of(script: ScriptDirectory, revision: str) -> str:
    """The label of the branch a revision is on (its root carries ``branch_labels``)."""
    current = script.get_revision(revision)
    while current is not None:
        if current.branch_labels:
            (label,) = current.branch_labels
            return label
        assert isinstance(current.down_revision, str | None), "a plugin branch never merges another branch"
        current = script.get_revision(current.down_revision) if current.down_revision else None
    raise AssertionError(f"revision {revision} is on no labelled branch")


def applied_revisions(script: ScriptDirectory, versions: set[str]) -> set[str]:
    """Every revision the stored versions stand for: each of them, its ancestors and what it depends on."""
    return {r.revision for r in script.iterate_revisions(tuple(versions), "base")} if versions else set()


def test_upgrade_downgrade_upgrade_on_a_fresh_database(fresh_platform: Platform, fresh_url: str) -> None:
    script = ScriptDirectory.from_config(migrate.alembic_config(fresh_platform))
    every_revision = {r.revision for r in script.walk_revisions()}
    model_tables = set(Base.metadata.tables)
    assert on_database(fresh_url, table_names) == set()

    migrate.upgrade(fresh_platform, "heads")

    assert on_database(fresh_url, table_names) == model_tables | {"alembic_version"}
    heads = migrate.heads(fresh_platform)
    with_migrations = {name for name, p in fresh_platform.plugins.plugins.items() if p.meta.migrations}
    assert {"notices", "opinion_box", "booking", "currency"} <= with_migrations
    assert sorted(branch_of(script, head) for head in heads) == sorted({"core"} | with_migrations)
    assert applied_revisions(script, on_database(fresh_url, stored_versions)) == every_revision
    assert on_database(fresh_url, rows("SELECT id, revision FROM platform_revision")) == [(1, 0)]

    migrate.downgrade(fresh_platform, "base")

    assert on_database(fresh_url, table_names) == {"alembic_version"}
    assert on_database(fresh_url, stored_versions) == set()
    if fresh_url.startswith("postgresql"):
        assert on_database(fresh_url, rows("SELECT count(*) FROM pg_policies")) == [(0,)]

    migrate.upgrade(fresh_platform, "heads")

    assert on_database(fresh_url, table_names) == model_tables | {"alembic_version"}
    assert applied_revisions(script, on_database(fresh_url, stored_versions)) == every_revision
    assert on_database(fresh_url, schema_differences) == []


def test_the_migrated_schema_is_what_the_models_declare(database_url: str) -> None:
    assert on_database(database_url, schema_differences) == []

    # The comparison is not blind: a column or an index added to a model without a migration shows up.
    changed = sa.MetaData(naming_convention=NAMING_CONVENTION)
    for table in Base.metadata.tables.values():
        table.to_metadata(changed)
    changed.tables["notices"].append_column(sa.Column("summary", sa.String(200), nullable=True))
    sa.Index("ix_municipalities_name", changed.tables["municipalities"].c.name)
    differences = on_database(database_url, lambda c: schema_differences(c, changed))
    assert sorted(d[0] for d in differences) == ["add_column", "add_index"], differences


def test_every_plugin_with_tables_has_a_branch_of_its_own(tmp_path: Path) -> None:
    platform = create_platform(settings_for(f"sqlite+aiosqlite:///{tmp_path / 'unused.sqlite3'}"))
    script = ScriptDirectory.from_config(migrate.alembic_config(platform))
    labelled = {label for r in script.walk_revisions() for label in r.branch_labels}
    assert platform.plugins.plugins
    for name, plugin in platform.plugins.plugins.items():
        if plugin.meta.tables:
            assert plugin.meta.migrations is not None, name
            assert name in labelled, name
