"""Shared pieces of the health tests: a town with the plugin on, people with sessions, and sessions to attend."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from core.db.base import utcnow
from core.identity.authn import CSRF_HEADER, SESSION_COOKIE, sha256_hex
from core.identity.models import Account, AuthSession, RoleGrant
from core.notifications.models import Notification
from core.platform import Platform
from plugins.health.models import Event
from plugins.health.schemas import Actor, EventCreate
from plugins.health.services import HealthContext, context_for, events

JST = ZoneInfo("Asia/Tokyo")
STAFF = Actor(ref="cli", staff=True)


def soon() -> datetime:
    """An hour from now: a session whose check-in is open."""
    return utcnow() + timedelta(hours=1)


def in_days(days: int, hour: int = 10) -> datetime:
    """A local time ``days`` from today at ``hour``."""
    day = datetime.now(JST).date() + timedelta(days=days)
    return datetime(day.year, day.month, day.day, hour, tzinfo=JST)


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

    def ctx(self, now: datetime | None = None) -> HealthContext:
        return context_for(self.platform, self.municipality, now=now)

    def session(self) -> Any:
        return self.platform.sessions.tenant(self.id)

    def url(self, path: str) -> str:
        return f"/m/{self.slug}/health{path}"

    async def account(
        self, name: str, *, roles: tuple[str, ...] = ("resident",), resident: bool = True
    ) -> uuid.UUID:
        if name not in self.accounts:
            async with self.platform.sessions.platform() as session:
                account = Account(
                    email=f"{uuid.uuid4().hex[:12]}@example.jp",
                    display_name=name,
                    residence_municipality_id=self.id if resident else None,
                )
                session.add(account)
            async with self.session() as session:
                for role in roles:
                    session.add(RoleGrant(account_id=account.id, role=role))
            self.accounts[name] = account.id
        return self.accounts[name]

    def actor(self, name: str, *, staff: bool = False) -> Actor:
        return Actor(ref=f"account:{self.accounts[name]}", account_id=self.accounts[name], staff=staff)

    async def headers(self, name: str, **kwargs: Any) -> dict[str, str]:
        """Cookie and CSRF headers of a fresh browser session of ``name``."""
        await self.account(name, **kwargs)
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

    async def event(
        self, *, days: int = 7, capacity: int = 10, starts_at: datetime | None = None, **fields: Any
    ) -> Event:
        """A session ``days`` from today at 10:00, or at ``starts_at``; two hours long."""
        start = starts_at or in_days(days)
        data = EventCreate(
            title=fields.pop("title", "eスポーツで脳トレ"),
            venue=fields.pop("venue", "文化交流プラザ"),
            starts_at=start,
            ends_at=start + timedelta(hours=2),
            capacity=capacity,
            **fields,
        )
        async with self.session() as session:
            return await events.create_event(session, self.ctx(), STAFF, data)

    async def notifications(self, name: str) -> list[Notification]:
        async with self.session() as session:
            return list(
                await session.scalars(
                    select(Notification)
                    .where(Notification.account_id == self.accounts[name])
                    .order_by(Notification.created_at)
                )
            )
