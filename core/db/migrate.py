"""Alembic, driven from code: one core branch in ``migrations/versions`` plus one branch per loaded plugin.

``tsunagu db upgrade`` goes to every head; ``downgrade`` takes a revision (or ``base``); ``current`` prints where
each branch is. The app never migrates on its own, except ``tsunagu demo`` for the embedded default.
"""

from __future__ import annotations

import io
from pathlib import Path

from alembic import command
from alembic.config import Config

from core.platform import Platform
from core.settings import PROJECT_ROOT

MIGRATIONS_DIR = PROJECT_ROOT / "migrations"


def alembic_config(platform: Platform) -> Config:
    """An Alembic config whose version locations are the core's and every loaded plugin's."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    locations = [str(MIGRATIONS_DIR / "versions")]
    for plugin in platform.plugins.plugins.values():
        if plugin.meta.migrations:
            locations.append(str(Path(plugin.meta.migrations)))
    config.set_main_option("version_locations", " ".join(locations))
    config.set_main_option("path_separator", "space")
    config.attributes["platform"] = platform
    return config


def upgrade(platform: Platform, revision: str = "heads") -> None:
    command.upgrade(alembic_config(platform), revision)


def downgrade(platform: Platform, revision: str) -> None:
    command.downgrade(alembic_config(platform), revision)


def current(platform: Platform) -> str:
    """Alembic's own report of the current revision of each branch."""
    buffer = io.StringIO()
    config = alembic_config(platform)
    config.stdout = buffer  # alembic prints to its Config's stream (bound at import), not to sys.stdout
    command.current(config, verbose=False)
    return buffer.getvalue()


def heads(platform: Platform) -> list[str]:
    from alembic.script import ScriptDirectory

    return sorted(ScriptDirectory.from_config(alembic_config(platform)).get_heads())
