"""e-スポーツ健康イベント・ご長寿健康ポイント (health): sessions for older residents, check-in, measures with consent,
and health points redeemable into the regional currency or for vouchers.

Nobody needs a smartphone: family register on a person's behalf, staff enter paper forms, and a printed card
or a short code checks a person in. See ``docs/health.md``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core import Plugin, PluginMeta, Title, hookimpl
from core.identity import Permission
from plugins.health.config import HealthSettings

TEMPLATES = Path(__file__).parent / "templates"

PERMISSIONS = (
    Permission(
        name="health.participate",
        description="Take part: keep a profile, register oneself or a family member, cancel, redeem points",
        default_roles=("resident", "staff", "admin"),
        scope="health:participate",
    ),
    Permission(
        name="health.manage",
        description="Run sessions: create them, enter paper forms, check people in, record consents and measures",
        default_roles=("staff", "admin"),
        scope="health:manage",
    ),
    Permission(
        name="health.stats",
        description="Read participation statistics (small cells suppressed)",
        default_roles=("staff", "admin"),
        scope="health:stats",
    ),
)


class HealthPlugin(Plugin):
    meta = PluginMeta(
        name="health",
        version="0.1.0",
        title=Title(ja="健康イベント・健康ポイント", en="Health events and points"),
        description="e-sports health sessions, check-in, measures with consent, health points and their redemption.",
        core_api=">=1.0,<2",
        settings=HealthSettings,
        models=("plugins.health.models",),
        tables=(
            "health_people",
            "health_events",
            "health_registrations",
            "health_scans",
            "health_consents",
            "health_measures",
            "health_awards",
            "health_redemptions",
        ),
        migrations=str(Path(__file__).parent / "migrations"),
    )

    @hookimpl
    def register_routes(self) -> list[Any]:
        from plugins.health.controllers import CONTROLLERS

        return list(CONTROLLERS)

    @hookimpl
    def register_cli_commands(self) -> list[Any]:
        from plugins.health.cli import COMMANDS

        return COMMANDS

    @hookimpl
    def register_permissions(self) -> list[Permission]:
        return list(PERMISSIONS)

    @hookimpl
    def register_actors(self) -> list[Any]:
        from plugins.health.tasks import JOBS

        return JOBS

    @hookimpl
    def register_periodic_jobs(self) -> list[Any]:
        from plugins.health.tasks import PERIODIC

        return PERIODIC

    @hookimpl
    def register_notification_templates(self) -> list[Path]:
        return [TEMPLATES]


plugin = HealthPlugin()

__all__ = ["HealthPlugin", "plugin"]
