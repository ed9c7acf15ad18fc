"""Shared fixtures: a migrated database on SQLite and on PostgreSQL, a platform, an app client.

PostgreSQL tests connect as ``tsunagu_app``, a role that is neither superuser nor BYPASSRLS and that owns the
tables (which FORCE row-level security), so the tests prove the policies rather than walk around them. They are
skipped only when no server answers, and never in CI (``CI`` or ``TSUNAGU_REQUIRE_POSTGRES`` set): there a
missing server fails the run.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import msgspec
import pytest
from sqlalchemy import text

from core.app import create_app
from core.db import migrate
from core.platform import Platform, create_platform
from core.settings import PROJECT_ROOT, Settings
from core.tenancy import service
from core.tenancy.manifest import load_manifests
from tests.asgi import lifespan_client

ADMIN_URL = os.environ.get("TSUNAGU_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
APP_ROLE = "tsunagu_app"
MANIFESTS = sorted((PROJECT_ROOT / "municipalities").glob("*.toml"))
POSTGRES_REQUIRED = bool(os.environ.get("CI") or os.environ.get("TSUNAGU_REQUIRE_POSTGRES"))


def enabled_in_manifests() -> dict[str, list[str]]:
    """Slug -> the plugins its manifest switches on, sorted: what tests expect after applying the manifests."""
    from core.tenancy.manifest import load_manifest

    manifests = (load_manifest(path) for path in MANIFESTS)
    return {m.slug: sorted(name for name, entry in m.plugins.items() if entry.enabled) for m in manifests}


def installed_plugins() -> list[str]:
    """The names of every plugin installed through the entry points, sorted."""
    from core.plugins.loader import discover

    return sorted(discover().plugins)


def _server_and_db(url: str) -> tuple[str, str]:
    base, _, database = url.rpartition("/")
    return base, database


async def _admin_connect() -> asyncpg.Connection:
    return await asyncpg.connect(ADMIN_URL, timeout=3)


def postgres_available() -> str | None:
    """``None`` if the server answers, else why not."""

    async def probe() -> None:
        conn = await _admin_connect()
        await conn.close()

    try:
        asyncio.run(probe())
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


class PostgresDatabases:
    """Creates throwaway databases owned by the unprivileged application role."""

    def __init__(self) -> None:
        self.created: list[str] = []

    def create(self) -> str:
        name = f"tsunagu_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"

        async def work() -> None:
            conn = await _admin_connect()
            try:
                exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", APP_ROLE)
                if not exists:
                    await conn.execute(
                        f"CREATE ROLE {APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE"
                    )
                await conn.execute(f'CREATE DATABASE "{name}" OWNER {APP_ROLE}')
                await conn.execute(f'REVOKE ALL ON DATABASE "{name}" FROM PUBLIC')
            finally:
                await conn.close()

        asyncio.run(work())
        self.created.append(name)
        server, _ = _server_and_db(ADMIN_URL)
        host = server.split("@", 1)[-1]
        return f"postgresql+asyncpg://{APP_ROLE}@{host}/{name}"

    def drop_all(self) -> None:
        async def work() -> None:
            conn = await _admin_connect()
            try:
                for name in self.created:
                    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await conn.close()

        if self.created:
            asyncio.run(work())


@pytest.fixture(scope="session")
def postgres_databases() -> Iterator[PostgresDatabases]:
    reason = postgres_available()
    if reason is not None:
        if POSTGRES_REQUIRED:
            pytest.fail(
                f"PostgreSQL is required here (CI) but not reachable at {ADMIN_URL}: {reason}", pytrace=False
            )
        pytest.skip(f"no PostgreSQL server reachable at {ADMIN_URL}: {reason}")
    databases = PostgresDatabases()
    yield databases
    databases.drop_all()


TEST_SECRET_KEY = "test-secret-key-for-tsunagu-tests-only-0123456789"


def test_settings(database_url: str, **overrides: object) -> Settings:
    """Settings for a test process; the secret is fixed so no ``var/secret-key`` is written into the checkout."""
    overrides.setdefault("secret_key", TEST_SECRET_KEY)
    return Settings(database_url=database_url, environment="test", log_level="warning", **overrides)  # type: ignore[arg-type]


def migrated_platform_sync(database_url: str) -> Platform:
    platform = create_platform(test_settings(database_url))
    migrate.upgrade(platform, "heads")
    return platform


@pytest.fixture(scope="session")
def postgres_template_url(postgres_databases: PostgresDatabases) -> str:
    """One migrated PostgreSQL database for the session; tests get it emptied (see ``database_url``)."""
    url = postgres_databases.create()
    platform = migrated_platform_sync(url)
    asyncio.run(platform.close())
    return url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file; each test gets a copy."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.sqlite3"
    platform = migrated_platform_sync(f"sqlite+aiosqlite:///{path}")
    asyncio.run(platform.close())
    return path


async def _empty_postgres(url: str) -> None:
    """Remove every row the previous test left, keeping the schema and the revision row."""
    platform = create_platform(test_settings(url))
    try:
        async with platform.engine.begin() as conn:
            tables = [
                r[0]
                for r in await conn.execute(
                    text(
                        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
                    )
                )
            ]
            await conn.execute(
                text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE")
            )
            await conn.execute(text("INSERT INTO platform_revision (id, revision) VALUES (1, 0)"))
    finally:
        await platform.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database on the backend under test."""
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "tsunagu.sqlite3"
        path.write_bytes(template.read_bytes())
        return f"sqlite+aiosqlite:///{path}"
    url: str = request.getfixturevalue("postgres_template_url")
    asyncio.run(_empty_postgres(url))
    return url


@pytest.fixture
async def platform(database_url: str) -> AsyncIterator[Platform]:
    """A platform on an empty database with the eight real municipalities applied from their manifests."""
    platform = create_platform(test_settings(database_url))
    await platform.refresh(force=True)
    await service.apply_manifests(platform, load_manifests(MANIFESTS), [str(p) for p in MANIFESTS])
    try:
        yield platform
    finally:
        await platform.close()


@pytest.fixture
async def client(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the app, with the platform above (jobs not consumed in-process)."""
    app = create_app(platform=platform, run_jobs_in_process=False)
    async with lifespan_client(app) as test_client:
        yield test_client


def replace_settings(settings: Settings, **changes: object) -> Settings:
    return msgspec.structs.replace(settings, **changes)
