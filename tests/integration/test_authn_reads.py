"""Credential checks read without the write lock: on SQLite a request's key check does not queue behind a write
that holds the database, and a stale ``last_used_at`` is still written (in its own short transaction)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.exc import DBAPIError

from core.db.base import utcnow
from core.identity.apikeys import create_api_key
from core.identity.authn import principal_from_api_key
from core.identity.models import ApiKey
from core.platform import Platform


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_a_key_check_does_not_wait_for_a_write_in_progress(platform: Platform) -> None:
    miki = platform.municipality("miki")
    info, key = await create_api_key(
        platform, miki, name="till", scopes=["notices:write"], expires_at=utcnow() + timedelta(days=1)
    )
    await principal_from_api_key(platform, key, miki)  # writes last_used_at: the next check only reads
    async with platform.sessions.tenant(miki.id) as writer:
        await writer.connection()  # BEGIN IMMEDIATE: the database's write lock is held from here
        principal = await principal_from_api_key(platform, key, miki)
    assert (principal.api_key_id, principal.scopes) == (info.id, frozenset({"notices:write"}))


async def test_a_stale_last_use_is_written(platform: Platform) -> None:
    miki = platform.municipality("miki")
    info, key = await create_api_key(
        platform, miki, name="till", scopes=["notices:write"], expires_at=utcnow() + timedelta(days=1)
    )
    long_ago = utcnow() - timedelta(hours=1)
    async with platform.sessions.tenant(miki.id) as session:
        await session.execute(update(ApiKey).where(ApiKey.id == info.id).values(last_used_at=long_ago))
    await principal_from_api_key(platform, key, miki)
    async with platform.sessions.tenant(miki.id) as session:
        used = await session.scalar(select(ApiKey.last_used_at).where(ApiKey.id == info.id))
    assert used is not None and used > long_ago


@pytest.mark.parametrize("backend", [pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_the_platform_reader_sees_every_municipality_and_cannot_write(platform: Platform) -> None:
    """Credentials are read on PostgreSQL through connections opened read-only in the platform context, in
    autocommit; those settings stay on that pool and never reach a tenant session."""
    miki, sanuki = platform.municipality("miki"), platform.municipality("sanuki")
    for m in (miki, sanuki):
        await create_api_key(
            platform, m, name="till", scopes=["notices:write"], expires_at=utcnow() + timedelta(days=1)
        )
    async with platform.sessions.platform_reader() as conn:
        owners = set(await conn.scalars(select(ApiKey.municipality_id)))
        assert owners >= {miki.id, sanuki.id}
        with pytest.raises(DBAPIError, match="read-only"):
            await conn.execute(update(ApiKey).values(last_used_at=utcnow()))
    async with platform.sessions.tenant(miki.id) as session:
        assert set(await session.scalars(select(ApiKey.municipality_id))) == {miki.id}
        context = text(
            "SELECT current_setting('tsunagu.platform', true), current_setting('transaction_read_only')"
        )
        assert tuple((await session.execute(context)).one()) == ("off", "off")
