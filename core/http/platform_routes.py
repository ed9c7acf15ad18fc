"""Routes of the core itself: health, readiness, the member list, and a municipality's front page."""

from __future__ import annotations

import asyncio

import msgspec
from litestar import get

from core.exceptions import NotReady
from core.http.dependencies import MunicipalityDep, PlatformDep
from core.jobs import check_broker


class Health(msgspec.Struct, kw_only=True, frozen=True):
    status: str


class Readiness(msgspec.Struct, kw_only=True, frozen=True):
    status: str
    database: str
    broker: str


class MunicipalitySummary(msgspec.Struct, kw_only=True, frozen=True):
    slug: str
    name: str
    name_en: str
    code: str


class Service(msgspec.Struct, kw_only=True, frozen=True):
    name: str
    title_ja: str
    title_en: str
    path: str


class MunicipalityFrontPage(msgspec.Struct, kw_only=True, frozen=True):
    slug: str
    name: str
    name_en: str
    code: str
    timezone: str
    locale: str
    services: list[Service]


@get("/healthz", tags=["platform"], sync_to_thread=False, summary="The process is alive")
def healthz() -> Health:
    return Health(status="ok")


@get("/readyz", tags=["platform"], summary="The database and the broker answer")
async def readyz(platform: PlatformDep) -> Readiness:
    database = broker = "ok"
    try:
        await asyncio.wait_for(platform.ping_database(), timeout=5)
    except Exception as exc:
        database = f"unreachable: {type(exc).__name__}"
    runner = platform.jobs
    if runner is not None:
        try:
            await asyncio.wait_for(
                asyncio.to_thread(check_broker, platform.settings, runner.broker), timeout=5
            )
        except Exception as exc:
            broker = f"unreachable: {type(exc).__name__}"
    if database != "ok" or broker != "ok":
        raise NotReady(f"database: {database}; broker: {broker}")
    return Readiness(status="ok", database=database, broker=broker)


@get("/municipalities", tags=["platform"], sync_to_thread=False, summary="The member municipalities")
def list_municipalities(platform: PlatformDep) -> list[MunicipalitySummary]:
    return [
        MunicipalitySummary(slug=m.slug, name=m.name, name_en=m.name_en, code=m.code)
        for m in sorted(platform.snapshot.by_id.values(), key=lambda m: m.code)
    ]


@get("/", tags=["municipality"], sync_to_thread=False, summary="This municipality and the services it offers")
def front_page(platform: PlatformDep, municipality: MunicipalityDep) -> MunicipalityFrontPage:
    enabled = platform.snapshot.enabled.get(municipality.id, frozenset())
    services = [
        Service(name=name, title_ja=plugin.meta.title.ja, title_en=plugin.meta.title.en, path=f"/{name}")
        for name, plugin in sorted(platform.plugins.plugins.items())
        if name in enabled
    ]
    return MunicipalityFrontPage(
        slug=municipality.slug,
        name=municipality.name,
        name_en=municipality.name_en,
        code=municipality.code,
        timezone=municipality.timezone,
        locale=municipality.locale,
        services=services,
    )


CORE_ROUTES = [healthz, readyz, list_municipalities, front_page]
