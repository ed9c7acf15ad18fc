"""Sealing with more municipalities than one statement could once name: one sealer tick over events of 510
municipalities (SQLite refuses a compound SELECT of more than 500 parts), then chains that continue from their
heads."""

from __future__ import annotations

from sqlalchemy import func, insert, select

from bench.synthetic import synthetic_codes
from core.audit import AuditChainEntry, record
from core.audit.sealing import Sealer
from core.platform import Platform
from core.tenancy.models import MunicipalityRow
from core.tenancy.service import bump_revision

MANY = 510


async def add_municipalities(platform: Platform, count: int) -> list[int]:
    taken = [m.code for m in platform.snapshot.by_id.values()]
    rows = [
        {"slug": f"m{code}", "code": code, "name": f"町{code}", "name_en": f"Town {code}", "hosts": []}
        for code in synthetic_codes(count, taken=taken)
    ]
    async with platform.sessions.platform() as session:
        await session.execute(insert(MunicipalityRow), rows)
        await bump_revision(session)
    await platform.refresh()
    return sorted(
        m.id
        for m in platform.snapshot.by_id.values()
        if m.slug.startswith("m") and m.code in {r["code"] for r in rows}
    )


async def record_one_each(platform: Platform, ids: list[int], round_: int) -> None:
    """One event in each municipality, one transaction each (as requests would record them)."""
    for municipality_id in ids:
        async with platform.sessions.tenant(municipality_id) as session:
            record(
                session, actor="system", action="notices.posted", target_type="notice", target_id=f"r{round_}"
            )


async def heads(platform: Platform, ids: list[int]) -> dict[int, int]:
    async with platform.sessions.platform() as session:
        rows = await session.execute(
            select(AuditChainEntry.municipality_id, func.max(AuditChainEntry.seq))
            .where(AuditChainEntry.municipality_id.in_(ids))
            .group_by(AuditChainEntry.municipality_id)
        )
        return {municipality_id: seq for municipality_id, seq in rows}


async def test_one_tick_seals_events_of_hundreds_of_municipalities_and_chains_continue(
    platform: Platform,
) -> None:
    ids = await add_municipalities(platform, MANY)
    assert len(ids) == MANY
    sealer = Sealer(platform)
    await record_one_each(platform, ids, 1)
    platform.audit_keys.recorded = True
    assert await sealer.tick() >= MANY
    assert await heads(platform, ids) == dict.fromkeys(ids, 1)
    again = [ids[0], ids[MANY // 2], ids[-1]]
    await record_one_each(platform, again, 2)
    platform.audit_keys.recorded = True
    assert await sealer.tick() == len(again)
    assert await heads(platform, ids) == {**dict.fromkeys(ids, 1), **dict.fromkeys(again, 2)}
