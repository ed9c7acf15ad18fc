"""Throwaway databases for a run: a migrated platform template cloned per run, and empty reference databases.

PostgreSQL: created through a superuser URL, owned by and used as the unprivileged role ``tsunagu_app`` (row-level
security in force, as in production), all dropped at the end. SQLite: files in a temporary folder.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from pathlib import Path

import asyncpg

from core.db import migrate
from core.platform import create_platform
from core.settings import Settings

APP_ROLE = "tsunagu_app"
SECRET = "bench-secret-" + "x" * 40
"""The platform secret of every process of a run (audit MACs need the same one in setup and server)."""


def platform_settings(url: str) -> Settings:
    return Settings(database_url=url, environment="production", log_level="warning", secret_key=SECRET)


def _migrate(url: str) -> None:
    platform = create_platform(platform_settings(url))
    try:
        migrate.upgrade(platform, "heads")
    finally:
        asyncio.run(platform.close())


class Backend:
    """Makes databases on one database server; :meth:`close` removes them all."""

    name: str

    def platform_database(self) -> str:
        """A fresh, migrated platform database (no municipalities yet)."""
        raise NotImplementedError

    def reference_database(self) -> str:
        """A fresh, empty database for the reference app."""
        raise NotImplementedError

    def version(self) -> str:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class SQLiteBackend(Backend):
    name = "sqlite"

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="tsunagu-bench-"))
        self._template: Path | None = None
        self._count = 0

    def _path(self, stem: str) -> Path:
        self._count += 1
        return self.folder / f"{stem}-{self._count}.sqlite3"

    def platform_database(self) -> str:
        if self._template is None:
            self._template = self.folder / "template.sqlite3"
            _migrate(f"sqlite+aiosqlite:///{self._template}")
        path = self._path("platform")
        shutil.copyfile(self._template, path)
        return f"sqlite+aiosqlite:///{path}"

    def reference_database(self) -> str:
        return f"sqlite+aiosqlite:///{self._path('reference')}"

    def version(self) -> str:
        import sqlite3

        return sqlite3.sqlite_version

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


class PostgresBackend(Backend):
    name = "postgres"

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.server = admin_url.rpartition("/")[0].split("@", 1)[-1]
        self.prefix = f"tsunagu_bench_{os.getpid()}"
        self.created: list[str] = []
        self._template: str | None = None

    def _run(self, *statements: str) -> object:
        async def work() -> object:
            conn = await asyncpg.connect(self.admin_url, timeout=5)
            try:
                result = None
                for statement in statements:
                    result = await conn.fetchval(statement)
                return result
            finally:
                await conn.close()

        return asyncio.run(work())

    def _create(self, template: str | None = None) -> str:
        name = f"{self.prefix}_{len(self.created)}"
        self._run(
            f"DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN "
            f"CREATE ROLE {APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE; END IF; END $$",
            f'CREATE DATABASE "{name}" OWNER {APP_ROLE}' + (f' TEMPLATE "{template}"' if template else ""),
            f'REVOKE ALL ON DATABASE "{name}" FROM PUBLIC',
        )
        self.created.append(name)
        return name

    def _url(self, name: str) -> str:
        return f"postgresql+asyncpg://{APP_ROLE}@{self.server}/{name}"

    def platform_database(self) -> str:
        if self._template is None:
            self._template = self._create()
            _migrate(self._url(self._template))
        return self._url(self._create(self._template))

    def reference_database(self) -> str:
        return self._url(self._create())

    def version(self) -> str:
        return str(self._run("SHOW server_version"))

    def close(self) -> None:
        if self.created:
            self._run(*(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)' for name in reversed(self.created)))
            self.created.clear()
