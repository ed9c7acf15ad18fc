"""Pieces that Alembic revisions of tenant tables share, the core's and every plugin's.

Every tenant table has ``municipality_id`` leading its keys, with a foreign key to ``municipalities`` named as the
declarative base's naming convention names it (so the migrated schema matches the models), and references to
other tenant tables through ``(municipality_id, id)``, so a row can never point into another municipality.
"""

from __future__ import annotations

import sqlalchemy as sa


def municipality_fk(table: str) -> sa.ForeignKeyConstraint:
    """``table.municipality_id`` → ``municipalities.id``; a municipality with rows cannot be deleted."""
    return sa.ForeignKeyConstraint(
        ["municipality_id"],
        ["municipalities.id"],
        ondelete="RESTRICT",
        name=f"fk_{table}_municipality_id_municipalities",
    )


def tenant_columns(table: str) -> list[sa.SchemaItem]:
    """The ``municipality_id`` column and its foreign key, for ``op.create_table(table, *..., ...)``."""
    return [sa.Column("municipality_id", sa.Integer(), nullable=False), municipality_fk(table)]


def tenant_reference(
    columns: list[str], table: str, name: str, ondelete: str = "RESTRICT"
) -> sa.ForeignKeyConstraint:
    """A reference to a row of the tenant table ``table`` in the same municipality: ``(municipality_id,
    *columns)`` → ``(table.municipality_id, table.id)``."""
    return sa.ForeignKeyConstraint(
        ["municipality_id", *columns],
        [f"{table}.municipality_id", f"{table}.id"],
        name=name,
        ondelete=ondelete,
    )
