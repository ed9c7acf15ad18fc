"""お知らせ (notices): the town's announcements, public to read, posted by administrators."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core import Plugin, PluginMeta, Title, hookimpl
from plugins.notices.config import NoticesSettings


class NoticesPlugin(Plugin):
    meta = PluginMeta(
        name="notices",
        version="0.1.0",
        title=Title(ja="お知らせ", en="Notices"),
        description="Announcements from the town: general news, disaster prevention, child-raising, events.",
        core_api=">=1.0,<2",
        settings=NoticesSettings,
        models=("plugins.notices.models",),
        tables=("notices",),
        migrations=str(Path(__file__).parent / "migrations"),
    )

    @hookimpl
    def register_routes(self) -> list[Any]:
        from plugins.notices.controllers import NoticeController

        return [NoticeController]

    @hookimpl
    def register_cli_commands(self) -> list[Any]:
        from plugins.notices.cli import COMMANDS

        return COMMANDS


plugin = NoticesPlugin()

__all__ = ["NoticesPlugin", "plugin"]
