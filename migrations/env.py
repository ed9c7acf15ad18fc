"""Alembic environment: async engine from the platform's settings, every table on the shared metadata."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection

from core.db.base import Base
from core.db.engine import create_engine

config = context.config
platform = config.attributes["platform"]
target_metadata = Base.metadata


def run_with(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        # Tenant tables FORCE row-level security even for their owner: data migrations work platform-wide.
        connection.execute(text("SELECT set_config('tsunagu.platform', 'on', false)"))
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_async() -> None:
    engine = create_engine(platform.settings.database_url)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(run_with)
            await connection.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    context.configure(url=platform.settings.database_url, target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(run_async())
