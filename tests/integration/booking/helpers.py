"""Shared pieces of the booking tests: a town with a gym, people, credentials, dates that are open days."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, text

from core.db.base import utcnow
from core.identity.authn import CSRF_HEADER, SESSION_COOKIE, sha256_hex
from core.identity.models import Account, AuthSession, RoleGrant
from core.identity.principal import Principal
from core.platform import Platform
from plugins.booking.models import Occupancy, Reservation, Unit
from plugins.booking.schemas import FacilityCreate, FixedSlot, UnitCreate
from plugins.booking.services import BookingContext, context_for, facilities
from plugins.booking.services._calendar import is_holiday, is_year_end
from plugins.booking.workflow import LIVE

JST = ZoneInfo("Asia/Tokyo")
ALL_WEEK = {str(d): ["09:00", "21:00"] for d in range(7)}


def open_day(after_days: int = 7) -> date:
    """The first day at least ``after_days`` from today that no test facility is closed on."""
    day = datetime.now(JST).date() + timedelta(days=after_days)
    while is_holiday(day) or is_year_end(day):
        day += timedelta(days=1)
    return day


_handed_out: set[date] = set()


def fresh_day() -> date:
    """An open day no earlier call handed out (hypothesis examples share one database within a test)."""
    offset = 7
    while (day := open_day(offset)) in _handed_out:
        offset += 1
    _handed_out.add(day)
    return day


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), JST)


@dataclass
class Gym:
    """A facility with a whole arena split into two halves, a meeting room with 時間区分, and a court."""

    facility_id: uuid.UUID
    whole: uuid.UUID
    half_a: uuid.UUID
    half_b: uuid.UUID
    room: uuid.UUID
    court: uuid.UUID


@dataclass
class Town:
    platform: Platform
    slug: str
    accounts: dict[str, uuid.UUID] = field(default_factory=dict)

    @property
    def municipality(self) -> Any:
        return self.platform.municipality(self.slug)

    @property
    def id(self) -> int:
        return self.municipality.id

    def ctx(self, now: datetime | None = None) -> BookingContext:
        return context_for(self.platform, self.municipality, now=now)

    def session(self) -> Any:
        return self.platform.sessions.tenant(self.id)

    async def person(
        self, name: str, *, roles: tuple[str, ...] = ("resident",), residence: str | None = None
    ) -> Principal:
        """An account holding ``roles`` here, living in ``residence`` (a slug; default: this town)."""
        if name not in self.accounts:
            home = self.platform.municipality(residence or self.slug).id if residence != "elsewhere" else None
            async with self.platform.sessions.platform() as session:
                account = Account(
                    email=f"{uuid.uuid4().hex[:12]}@example.jp",
                    display_name=name,
                    residence_municipality_id=home,
                )
                session.add(account)
            async with self.session() as session:
                for role in roles:
                    session.add(RoleGrant(account_id=account.id, role=role))
            self.accounts[name] = account.id
        return Principal(
            kind="session",
            account_id=self.accounts[name],
            municipality_id=self.id,
            roles=frozenset(roles),
        )

    async def headers(self, name: str, **kwargs: Any) -> dict[str, str]:
        """Cookie and CSRF headers of a fresh browser session of ``name`` (created with :meth:`person`)."""
        await self.person(name, **kwargs)
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        async with self.session() as session:
            session.add(
                AuthSession(
                    token_hash=sha256_hex(token),
                    account_id=self.accounts[name],
                    csrf_token=csrf,
                    expires_at=utcnow() + timedelta(hours=1),
                )
            )
        return {"cookie": f"{SESSION_COOKIE}={token}", CSRF_HEADER: csrf}

    def url(self, path: str) -> str:
        return f"/m/{self.slug}/booking{path}"

    async def gym(self, **facility: Any) -> Gym:
        async with self.session() as session:
            gym = await facilities.create_facility(
                session, FacilityCreate(name="町民体育館", kind="gymnasium", hours=ALL_WEEK, **facility)
            )
            whole = await facilities.add_unit(
                session,
                gym.id,
                UnitCreate(
                    name="アリーナ全面", slot_minutes=60, fee_resident=1000, fee_region=1500, fee_other=2000
                ),
            )
            half_a = await facilities.add_unit(
                session,
                gym.id,
                UnitCreate(name="アリーナA面", parent_id=whole.id, slot_minutes=60, fee_resident=500),
            )
            half_b = await facilities.add_unit(
                session,
                gym.id,
                UnitCreate(name="アリーナB面", parent_id=whole.id, slot_minutes=60, fee_resident=500),
            )
            room = await facilities.add_unit(
                session,
                gym.id,
                UnitCreate(
                    name="会議室",
                    fixed_slots=[
                        FixedSlot(name="午前", start="09:00", end="12:00"),
                        FixedSlot(name="午後", start="13:00", end="17:00"),
                        FixedSlot(name="夜間", start="18:00", end="21:00"),
                    ],
                    fee_resident=800,
                    requires_approval=True,
                ),
            )
            court = await facilities.add_unit(
                session,
                gym.id,
                UnitCreate(name="テニスコート", slot_minutes=60, setup_minutes=0, cleanup_minutes=30),
            )
        return Gym(
            facility_id=gym.id,
            whole=whole.id,
            half_a=half_a.id,
            half_b=half_b.id,
            room=room.id,
            court=court.id,
        )


async def live_overlaps(town: Town) -> list[tuple[Any, ...]]:
    """Pairs of live reservations of related units (the same, or one part of the other) overlapping in time,
    buffers included, computed in SQL from the reservations alone: must always be empty."""
    async with town.session() as session:
        units = {u.id: u for u in await session.scalars(select(Unit))}
        rows = list(await session.scalars(select(Reservation).where(Reservation.state.in_(LIVE))))
    related = set()
    for unit in units.values():
        current = unit.parent_id
        related.add((unit.id, unit.id))
        while current is not None:
            related.update({(unit.id, current), (current, unit.id)})
            current = units[current].parent_id
    found = []
    for i, a in enumerate(rows):
        for b in rows[i + 1 :]:
            if (a.unit_id, b.unit_id) not in related:
                continue
            ua, ub = units[a.unit_id], units[b.unit_id]
            a_start, a_end = (
                a.starts_at - timedelta(minutes=ua.setup_minutes),
                a.ends_at + timedelta(minutes=ua.cleanup_minutes),
            )
            b_start, b_end = (
                b.starts_at - timedelta(minutes=ub.setup_minutes),
                b.ends_at + timedelta(minutes=ub.cleanup_minutes),
            )
            if a_start < b_end and b_start < a_end:
                found.append((a.id, b.id))
    return found


async def overlapping_occupancies_sql(town: Town) -> int:
    """Overlapping occupancy rows of one unit, counted by the database itself."""
    async with town.session() as session:
        return (
            await session.scalar(
                text(
                    "SELECT count(*) FROM booking_occupancies a JOIN booking_occupancies b "
                    "ON a.municipality_id = b.municipality_id AND a.unit_id = b.unit_id AND a.id < b.id "
                    "AND a.starts_at < b.ends_at AND b.starts_at < a.ends_at"
                )
            )
            or 0
        )


async def occupancy_count(town: Town) -> int:
    async with town.session() as session:
        return len(list(await session.scalars(select(Occupancy.id))))
