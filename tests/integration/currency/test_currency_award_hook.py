"""The award hook, called by a throwaway plugin as the health plugin will: idempotent per (source, reference),
refused when reused for a different award, and answered by nobody where the currency is off."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import msgspec
import pytest
from litestar import post
from litestar.params import JSONBody
from sqlalchemy import func, select

from core import Plugin, PluginMeta, Title, hookimpl
from core.app import create_app
from core.http.dependencies import DbSession, MunicipalityDep, PlatformDep
from core.platform import Platform, create_platform
from core.tenancy import service
from core.tenancy.manifest import load_manifests
from plugins.currency.models import Transfer
from tests.asgi import lifespan_client
from tests.conftest import MANIFESTS
from tests.conftest import test_settings as settings_for
from tests.integration.currency.helpers import balance_of, make_person, tenant


class Steps(msgspec.Struct, kw_only=True, frozen=True):
    account_id: uuid.UUID
    points: int
    day: str


@post("/steps", status_code=200)
async def record_steps(
    platform: PlatformDep, municipality: MunicipalityDep, db_session: DbSession, data: JSONBody[Steps]
) -> dict[str, Any]:
    award = platform.hooks(municipality).award_for_reference(
        platform=platform,
        municipality=municipality,
        session=db_session,
        account_id=data.account_id,
        amount=data.points,
        source="rewarder",
        reference=f"steps:{data.account_id}:{data.day}",
        currency=None,
    )
    if award is None:
        return {"awarded": False}
    result = await award
    return {"awarded": True, "created": result.created, "transfer_id": str(result.transfer_id)}


class Rewarder(Plugin):
    meta = PluginMeta(name="rewarder", version="0.1.0", title=Title(ja="歩数", en="Steps"))

    @hookimpl
    def register_routes(self) -> list[Any]:
        return [record_steps]


@pytest.fixture
async def rewarded(database_url: str) -> AsyncIterator[tuple[Platform, httpx.AsyncClient]]:
    platform = create_platform(settings_for(database_url), extra_plugins=[Rewarder()])
    await platform.refresh(force=True)
    await service.apply_manifests(platform, load_manifests(MANIFESTS), [str(p) for p in MANIFESTS])
    for slug in ("miki", "takamatsu"):
        await service.set_plugin_enabled(platform, slug, "rewarder", True)
    app = create_app(platform=platform, run_jobs_in_process=False)
    async with lifespan_client(app) as client:
        yield platform, client


async def test_hook_award_for_reference(rewarded: tuple[Platform, httpx.AsyncClient]) -> None:
    platform, client = rewarded
    walker = await make_person(platform)
    steps = {"account_id": str(walker), "points": 30, "day": "2026-11-27"}

    first = (await client.post("/m/miki/rewarder/steps", json=steps)).json()
    again = (await client.post("/m/miki/rewarder/steps", json=steps)).json()
    assert first["awarded"] and first["created"] and not again["created"]
    assert again["transfer_id"] == first["transfer_id"]
    assert await balance_of(platform, "resident", walker) == 30

    changed = await client.post("/m/miki/rewarder/steps", json={**steps, "points": 31})
    assert changed.status_code == 422 and "awarded already" in changed.json()["detail"]
    next_day = (await client.post("/m/miki/rewarder/steps", json={**steps, "day": "2026-11-28"})).json()
    assert next_day["created"]
    assert await balance_of(platform, "resident", walker) == 60
    async with tenant(platform) as session:
        awards = await session.scalar(
            select(func.count()).select_from(Transfer).where(Transfer.kind == "award")
        )
        lots = (
            await session.execute(select(Transfer.source, Transfer.actor).where(Transfer.kind == "award"))
        ).all()
    assert awards == 2 and set(lots) == {("rewarder", "plugin:rewarder")}

    # Where the currency is off, nobody answers: the caller carries on without awarding.
    elsewhere = await client.post("/m/takamatsu/rewarder/steps", json=steps)
    assert elsewhere.status_code == 200 and elsewhere.json() == {"awarded": False}
