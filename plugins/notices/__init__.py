"""お知らせ (notices): the town's announcements, public to read, posted by staff and administrators."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core import Plugin, PluginMeta, Title, hookimpl
from core.identity import Permission
from plugins.notices.config import NoticesSettings

PERMISSIONS = (
    Permission(
        name="notices.post",
        description="Post notices and withdraw them",
        default_roles=("staff", "admin"),
        scope="notices:write",
    ),
    Permission(
        name="notices.read_all",
        description="See every notice, scheduled and withdrawn ones included",
        default_roles=("staff", "admin"),
        scope="notices:read",
    ),
)


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

    @hookimpl
    def register_permissions(self) -> list[Permission]:
        return list(PERMISSIONS)


plugin = NoticesPlugin()

__all__ = ["NoticesPlugin", "plugin"]
