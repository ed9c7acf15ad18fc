"""Shared helpers of the currency tests: people, shops, codes, and a session bound to a town."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from core.identity.models import Account, RoleGrant
from core.platform import Platform
from plugins.currency import services
from plugins.currency.config import CurrencySettings

TOWN = "miki"
COIN = "MIKI"


@asynccontextmanager
async def tenant(platform: Platform, slug: str = TOWN) -> AsyncIterator[AsyncSession]:
    async with platform.sessions.tenant(platform.municipality(slug).id) as session:
        yield session


def settings_of(platform: Platform, slug: str = TOWN) -> CurrencySettings:
    return platform.plugin_settings(platform.municipality(slug), "currency")


def tz_of(platform: Platform, slug: str = TOWN) -> ZoneInfo:
    return ZoneInfo(platform.municipality(slug).timezone)


async def make_person(
    platform: Platform,
    slug: str = TOWN,
    *,
    roles: tuple[str, ...] = ("resident",),
    postal_code: str | None = None,
    residence: str | None = None,
) -> uuid.UUID:
    async with platform.sessions.platform() as session:
        account = Account(
            email=f"{uuid.uuid4().hex[:12]}@example.jp",
            display_name="住民",
            postal_code=postal_code,
            residence_municipality_id=platform.municipality(residence).id if residence else None,
        )
        session.add(account)
    async with tenant(platform, slug) as session:
        for role in roles:
            session.add(RoleGrant(account_id=account.id, role=role))
    return account.id


async def make_shop(
    platform: Platform, slug: str = TOWN, *, category: str = "food", name: str = "三木うどん"
) -> uuid.UUID:
    async with tenant(platform, slug) as session:
        merchant = await services.register_merchant(
            session, settings_of(platform, slug), name=name, category=category, actor="cli"
        )
    return merchant.id


def fixed_code(platform: Platform, shop: uuid.UUID, slug: str = TOWN, currency: str = COIN) -> str:
    return services.make_code(
        services.code_key(platform.settings), municipality=slug, merchant_id=shop, currency=currency
    )


async def issue(platform: Platform, person: uuid.UUID, purchased: int, bonus: int = 0, **kwargs: Any) -> Any:
    async with tenant(platform, kwargs.pop("slug", TOWN)) as session:
        return await services.issue(
            session,
            settings_of(platform),
            person_id=person,
            currency=kwargs.pop("currency", COIN),
            purchased=purchased,
            bonus=bonus,
            actor="cli",
            **kwargs,
        )


async def pay(
    platform: Platform,
    payer: uuid.UUID,
    shop: uuid.UUID,
    amount: int | None,
    *,
    code: str | None = None,
    now: datetime | None = None,
) -> Any:
    async with tenant(platform) as session:
        return await services.pay(
            session,
            settings_of(platform),
            key=services.code_key(platform.settings),
            municipality=TOWN,
            tz=tz_of(platform),
            payer_id=payer,
            code=code or fixed_code(platform, shop),
            amount=amount,
            actor=f"account:{payer}",
            now=now,
        )


async def balance_of(platform: Platform, kind: str, owner: uuid.UUID, currency: str = COIN) -> int:
    async with tenant(platform) as session:
        found = await services.find_account(session, currency, kind, owner)
        return found.balance if found is not None else 0


async def verified(platform: Platform, slug: str = TOWN) -> services.Report:
    async with tenant(platform, slug) as session:
        return await services.verify(session)


async def signed_in(platform: Platform, person: uuid.UUID, slug: str = TOWN) -> dict[str, str]:
    """Headers of a browser session of ``person`` at ``slug``: the cookie and the CSRF token unsafe methods need."""
    import secrets
    from datetime import timedelta

    from core.db import utcnow
    from core.identity.authn import CSRF_HEADER, SESSION_COOKIE, sha256_hex
    from core.identity.models import AuthSession

    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    async with tenant(platform, slug) as session:
        session.add(
            AuthSession(
                token_hash=sha256_hex(token),
                account_id=person,
                csrf_token=csrf,
                expires_at=utcnow() + timedelta(hours=1),
            )
        )
    return {CSRF_HEADER: csrf, "cookie": f"{SESSION_COOKIE}={token}"}
