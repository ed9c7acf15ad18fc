"""ご意見箱 (opinion box): residents send opinions to their town; a vendor plugin shipped as its own package."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core import Plugin, PluginMeta, Title, hookimpl
from core.identity import Permission
from tsunagu_opinion_box.config import OpinionBoxSettings

PERMISSIONS = (
    Permission(
        name="opinion_box.read",
        description="Read the opinions residents sent",
        default_roles=("staff", "admin"),
        scope="opinion_box:read",
    ),
    Permission(
        name="opinion_box.answer",
        description="Mark opinions answered",
        default_roles=("staff", "admin"),
        scope="opinion_box:write",
    ),
)


class OpinionBoxPlugin(Plugin):
    meta = PluginMeta(
        name="opinion_box",
        version="0.1.0",
        title=Title(ja="ご意見箱", en="Opinion box"),
        description="Residents send opinions to the town and follow them with a receipt number.",
        core_api=">=1.0,<2",
        settings=OpinionBoxSettings,
        models=("tsunagu_opinion_box.models",),
        tables=("opinion_box_opinions",),
        migrations=str(Path(__file__).parent / "migrations"),
    )

    @hookimpl
    def register_routes(self) -> list[Any]:
        from tsunagu_opinion_box.controllers import OpinionController

        return [OpinionController]

    @hookimpl
    def register_cli_commands(self) -> list[Any]:
        from tsunagu_opinion_box.cli import COMMANDS

        return COMMANDS

    @hookimpl
    def register_permissions(self) -> list[Permission]:
        return list(PERMISSIONS)


plugin = OpinionBoxPlugin()

__all__ = ["OpinionBoxPlugin", "plugin"]
