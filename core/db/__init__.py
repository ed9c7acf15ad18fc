"""Database layer: one declarative base, tenant-bound sessions, engines, row-level security."""

from core.db.base import Base, TenantScoped, TimestampMixin, UTCDateTime, municipality_column, utcnow
from core.db.engine import create_engine
from core.db.session import SessionFactory, bound_municipality

__all__ = [
    "Base",
    "SessionFactory",
    "TenantScoped",
    "TimestampMixin",
    "UTCDateTime",
    "bound_municipality",
    "create_engine",
    "municipality_column",
    "utcnow",
]
