"""Helpers for the plugin tests: throwaway distributions, captured log lines, the stored plugin state."""

from __future__ import annotations

import sys
import types
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msgspec
import pytest
import structlog
from sqlalchemy import select

from core.platform import Platform
from core.tenancy.models import PlatformRevisionRow, PluginEnablementRow


def write_distribution(root: Path, entry_points: dict[str, str], modules: dict[str, str]) -> str:
    """Write an installed-looking distribution into ``root``: a ``*.dist-info`` folder and its modules.

    :param entry_points: entry point name -> ``module:attribute`` in the ``tsunagu.plugins`` group.
    :param modules: module name -> source.
    :returns: the distribution's name.
    """
    dist = f"tsunagu_test_vendor_{uuid.uuid4().hex[:8]}"
    info = root / f"{dist}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n", encoding="utf-8")
    lines = "".join(f"{name} = {target}\n" for name, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[tsunagu.plugins]\n{lines}", encoding="utf-8")
    for module, source in modules.items():
        (root / f"{module}.py").write_text(source, encoding="utf-8")
    return dist


def unique_module(stem: str) -> str:
    """A module name no earlier test has imported (``sys.modules`` would hand back the old one)."""
    return f"tsunagu_test_{stem}_{uuid.uuid4().hex[:8]}"


def forget_modules(prefix: str = "tsunagu_test_") -> None:
    for name in [n for n in sys.modules if n.startswith(prefix)]:
        del sys.modules[name]


@contextmanager
def captured_logs(
    monkeypatch: pytest.MonkeyPatch, *modules: types.ModuleType
) -> Iterator[list[dict[str, Any]]]:
    """structlog events written by ``modules`` (through their module-level ``log``) while the block runs.

    ``configure_logging`` turns on ``cache_logger_on_first_use`` and is called again by each app a test
    builds; a module logger cached under an earlier configuration would bypass ``capture_logs``. Each module
    gets a fresh logger here, so nothing is cached before the capture starts. Build no app inside the block.
    """
    for module in modules:
        monkeypatch.setattr(module, "log", structlog.get_logger(module.__name__))
    with structlog.testing.capture_logs() as logs:
        yield logs


class DbState(msgspec.Struct, frozen=True):
    revision: int
    enablements: frozenset[tuple[int, str, bool, str]]


async def db_state(platform: Platform) -> DbState:
    """The platform revision and every enablement row, as stored (to prove a refusal changed nothing)."""
    async with platform.sessions.platform() as session:
        revision = await session.scalar(
            select(PlatformRevisionRow.revision).where(PlatformRevisionRow.id == 1)
        )
        rows = (await session.scalars(select(PluginEnablementRow))).all()
        enablements = frozenset(
            (r.municipality_id, r.plugin, r.enabled, msgspec.json.encode(r.settings, order="sorted").decode())
            for r in rows
        )
    assert revision is not None
    return DbState(revision=revision, enablements=enablements)
