"""Small SQL helpers the services share: insert-if-absent on both backends."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession


async def insert_if_absent(session: AsyncSession, model: type[Any], values: dict[str, Any]) -> bool:
    """``INSERT ... ON CONFLICT DO NOTHING``; returns whether the row was inserted.

    On PostgreSQL a concurrent insert of the same key waits for the other transaction: if it commits, this one
    inserts nothing (and then sees the committed row); if it rolls back, this one inserts.
    """
    dialect = session.get_bind().dialect.name
    module: Any = postgresql if dialect == "postgresql" else sqlite
    statement = module.insert(model).values(**values).on_conflict_do_nothing()
    result = await session.execute(statement)
    return bool(result.rowcount)  # type: ignore[attr-defined]
