"""The opinions table, owned per municipality."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import String, Text, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, TenantScoped, TimestampMixin, UTCDateTime, municipality_column


class Opinion(TenantScoped, TimestampMixin, Base):
    __tablename__ = "opinion_box_opinions"

    municipality_id: Mapped[int] = municipality_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    receipt: Mapped[str] = mapped_column(String(12))
    topic: Mapped[str] = mapped_column(String(100))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="received")
    reply_due: Mapped[datetime] = mapped_column(UTCDateTime())
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (UniqueConstraint("municipality_id", "receipt", name="uq_opinion_box_opinions_receipt"),)
