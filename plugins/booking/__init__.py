"""施設予約 (booking): public facility reservations, monthly lotteries, waitlists and calendars.

Residents of the whole region book courts, gyms, halls and rooms of any member town; staff run the facilities.
See ``docs/booking.md``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core import Plugin, PluginMeta, Title, hookimpl
from core.identity import Permission
from plugins.booking.config import BookingSettings

TEMPLATES = Path(__file__).parent / "templates"

PERMISSIONS = (
    Permission(
        name="booking.reserve",
        description="Book facilities, confirm and cancel one's own bookings, join waitlists and lotteries",
        default_roles=("resident", "staff", "admin"),
        scope="booking:reserve",
    ),
    Permission(
        name="booking.manage",
        description="Manage facilities and units, block time (行政使用), review, cancel any booking, run lotteries",
        default_roles=("staff", "admin"),
        scope="booking:manage",
    ),
    Permission(
        name="booking.read_all",
        description="See every booking of the municipality, with who booked",
        default_roles=("staff", "admin"),
        scope="booking:read",
    ),
)


class BookingPlugin(Plugin):
    meta = PluginMeta(
        name="booking",
        version="0.1.0",
        title=Title(ja="施設予約", en="Facility booking"),
        description="Reservations of public facilities: availability, holds, review, lotteries, waitlists, calendars.",
        core_api=">=1.0,<2",
        settings=BookingSettings,
        models=("plugins.booking.models",),
        tables=(
            "booking_facilities",
            "booking_units",
            "booking_reservations",
            "booking_occupancies",
            "booking_waitlist",
            "booking_lottery_applications",
            "booking_lottery_wishes",
            "booking_lottery_draws",
        ),
        migrations=str(Path(__file__).parent / "migrations"),
    )

    @hookimpl
    def register_routes(self) -> list[Any]:
        from plugins.booking.controllers import CONTROLLERS

        return list(CONTROLLERS)

    @hookimpl
    def register_cli_commands(self) -> list[Any]:
        from plugins.booking.cli import COMMANDS

        return COMMANDS

    @hookimpl
    def register_permissions(self) -> list[Permission]:
        return list(PERMISSIONS)

    @hookimpl
    def register_workflows(self) -> list[Any]:
        from plugins.booking.workflow import RESERVATION

        return [RESERVATION]

    @hookimpl
    def register_actors(self) -> list[Any]:
        from plugins.booking.tasks import JOBS

        return JOBS

    @hookimpl
    def register_periodic_jobs(self) -> list[Any]:
        from plugins.booking.tasks import PERIODIC

        return PERIODIC

    @hookimpl
    def register_notification_templates(self) -> list[Path]:
        return [TEMPLATES]


plugin = BookingPlugin()

__all__ = ["BookingPlugin", "plugin"]
