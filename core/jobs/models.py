"""Tables of the job machinery: the keys of effects already done, and which period each periodic job last ran for."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base, TenantScoped, UTCDateTime, municipality_column


class JobRun(TenantScoped, Base):
    """A job's effect for one message key is done; written in the same transaction as the effect
    (:meth:`core.jobs.JobContext.once`), so a redelivered message finds it and does nothing."""

    __tablename__ = "job_runs"

    municipality_id: Mapped[int] = municipality_column(primary_key=True)
    job: Mapped[str] = mapped_column(String(120), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    done_at: Mapped[datetime] = mapped_column(UTCDateTime())


class PeriodicClaim(TenantScoped, Base):
    """The latest period a periodic job was queued for in one municipality. Moving ``period_start`` forward is
    the claim: of several schedulers racing for one period, exactly one moves it."""

    __tablename__ = "periodic_claims"

    municipality_id: Mapped[int] = municipality_column(primary_key=True)
    job: Mapped[str] = mapped_column(String(120), primary_key=True)
    period_start: Mapped[datetime] = mapped_column(UTCDateTime())
    claimed_at: Mapped[datetime] = mapped_column(UTCDateTime())
