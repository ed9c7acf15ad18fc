"""The reference app: Litestar, the database driver through SQLAlchemy Core, and nothing else.

No tenancy, no plugins, no authentication, no audit log. Its engine is made by the platform's own
:func:`core.db.engine.create_engine`, so the driver, the connection pool and SQLite's settings (WAL, busy timeout,
``BEGIN IMMEDIATE``) are the platform's: the ratio measures what the platform does, not another database setup.

Configured by the environment: ``TSUNAGU_BENCH_REFERENCE_DATABASE_URL`` and ``TSUNAGU_BENCH_REFERENCE_MODULES``
(comma-separated modules, each with ``ROUTES``).
"""

from __future__ import annotations

import importlib
import os

from litestar import Litestar, get
from litestar.datastructures import State
from sqlalchemy import text

from core.db.engine import create_engine

DATABASE_URL_VARIABLE = "TSUNAGU_BENCH_REFERENCE_DATABASE_URL"
MODULES_VARIABLE = "TSUNAGU_BENCH_REFERENCE_MODULES"


@get("/readyz")
async def readyz(state: State) -> dict[str, str]:
    async with state.engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
    return {"status": "ok"}


def create_app() -> Litestar:
    engine = create_engine(os.environ[DATABASE_URL_VARIABLE])
    modules = [importlib.import_module(name) for name in os.environ[MODULES_VARIABLE].split(",") if name]
    return Litestar(
        route_handlers=[readyz, *(handler for module in modules for handler in module.ROUTES)],
        state=State({"engine": engine}),
        on_shutdown=[engine.dispose],
        openapi_config=None,
        logging_config=None,
        debug=False,
    )
