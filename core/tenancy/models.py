"""Core tables: municipalities, which plugins each runs, and the revision that tells processes to reload."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Boolean, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base, TenantScoped, TimestampMixin, municipality_column


class MunicipalityRow(TimestampMixin, Base):
    """A tenant. Not itself tenant-scoped: the list of members is public."""

    __tablename__ = "municipalities"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    slug: Mapped[str] = mapped_column(String(40), unique=True)
    code: Mapped[str] = mapped_column(String(6), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(100))
    hosts: Mapped[list[str]] = mapped_column(JSON, default=list)
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Tokyo")
    locale: Mapped[str] = mapped_column(String(8), default="ja")
    auth: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    """The manifest's ``[auth]`` table (no secrets: those are named environment variables)."""


class PluginEnablementRow(TenantScoped, TimestampMixin, Base):
    """Whether a plugin runs for a municipality, and its settings there.

    Lives in the database (not in process memory) so that a switch reaches every process without a restart.
    """

    __tablename__ = "plugin_enablements"

    municipality_id: Mapped[int] = municipality_column(primary_key=True)
    plugin: Mapped[str] = mapped_column(String(40), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class PlatformRevisionRow(Base):
    """A single counter bumped by every change to municipalities or enablements; processes poll it."""

    __tablename__ = "platform_revision"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    revision: Mapped[int] = mapped_column(Integer, default=0)
