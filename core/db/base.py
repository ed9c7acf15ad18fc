"""The one declarative base, its naming convention, and the mixin every tenant-owned table uses."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, ForeignKey, Integer, MetaData
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always returned time-zone aware (SQLite keeps no zone of its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given for a UTC timestamp column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base for core and plugin tables; all share one MetaData so migrations see them all."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class TenantScoped:
    """Mixin for tables whose rows belong to one municipality.

    A session bound to a municipality filters every ORM read, update and delete of these tables to that
    municipality and stamps (or refuses) ``municipality_id`` on writes; on PostgreSQL row-level security
    enforces the same for raw SQL. Keep ``municipality_id`` leading every key and index so the schema can be
    distributed by municipality later.
    """

    __tenant_scoped__ = True

    @declared_attr
    def municipality_id(cls) -> Mapped[int]:  # noqa: N805 - declared_attr receives the class
        return municipality_column()


def municipality_column(*, primary_key: bool = False) -> Mapped[int]:
    """The ``municipality_id`` column; pass ``primary_key=True`` where it leads a composite key."""
    return mapped_column(
        Integer,
        ForeignKey("municipalities.id", ondelete="RESTRICT"),
        nullable=False,
        primary_key=primary_key,
        index=not primary_key,
    )


def is_tenant_table(table_name: str) -> bool:
    """Whether a table in the shared metadata is tenant-owned (has ``municipality_id``)."""
    table = Base.metadata.tables.get(table_name)
    return table is not None and "municipality_id" in table.c
