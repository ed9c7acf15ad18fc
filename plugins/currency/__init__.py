"""地域通貨 (currency): a regional currency and points ledger, with privacy-safe purchase statistics.

Residents hold value in lots, pay registered shops by QR code, and get refunds; staff issue value and settle with
shops; other plugins award value through the ``award_for_reference`` hook. See ``docs/currency.md``.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from core import Plugin, PluginMeta, Title, hookimpl
from core.identity import Permission
from plugins.currency.config import CurrencySettings

PERMISSIONS = (
    Permission(
        name="currency.pay",
        description="Hold value in the municipality's currencies and pay shops with it",
        default_roles=("resident", "staff", "admin"),
        scope="currency:pay",
    ),
    Permission(
        name="currency.accept",
        description="Take payments and give refunds at a shop one belongs to",
        default_roles=("resident", "staff", "admin"),
        scope="currency:accept",
    ),
    Permission(
        name="currency.issue",
        description="Issue (top up) value to residents",
        default_roles=("staff", "admin"),
        scope="currency:issue",
    ),
    Permission(
        name="currency.manage",
        description="Register shops, settle with them, correct transfers, read statements and reports",
        default_roles=("admin",),
        scope="currency:manage",
    ),
    Permission(
        name="currency.analytics",
        description="Read the aggregated purchase statistics (never one person's purchases)",
        default_roles=("admin",),
        scope="currency:analytics",
    ),
)


class CurrencyPlugin(Plugin):
    meta = PluginMeta(
        name="currency",
        version="0.1.0",
        title=Title(ja="地域通貨", en="Regional currency"),
        description="A regional currency and points ledger: wallets, QR payments at local shops, settlement, "
        "expiry, and purchase statistics with small cells suppressed.",
        core_api=">=1.0,<2",
        settings=CurrencySettings,
        models=("plugins.currency.models",),
        tables=(
            "currency_accounts",
            "currency_transfers",
            "currency_entries",
            "currency_lots",
            "currency_lot_draws",
            "currency_merchants",
            "currency_merchant_members",
            "currency_holder_profiles",
            "currency_idempotency_keys",
            "currency_stats_weeks",
            "currency_stats_cells",
        ),
        migrations=str(Path(__file__).parent / "migrations"),
    )

    @hookimpl
    def register_routes(self) -> list[Any]:
        from plugins.currency.controllers import CONTROLLERS

        return list(CONTROLLERS)

    @hookimpl
    def register_cli_commands(self) -> list[Any]:
        from plugins.currency.cli import COMMANDS

        return COMMANDS

    @hookimpl
    def register_permissions(self) -> list[Permission]:
        return list(PERMISSIONS)

    @hookimpl
    def register_actors(self) -> list[Any]:
        from plugins.currency.tasks import JOBS

        return list(JOBS)

    @hookimpl
    def register_periodic_jobs(self) -> list[Any]:
        from plugins.currency.tasks import periodic_jobs

        return periodic_jobs()

    @hookimpl
    def register_notification_templates(self) -> list[Path]:
        return [Path(__file__).parent / "templates"]

    @hookimpl
    def award_for_reference(
        self,
        platform: Any,
        municipality: Any,
        session: Any,
        account_id: uuid.UUID,
        amount: int,
        source: str,
        reference: str,
        currency: str | None,
    ) -> Any:
        from plugins.currency.services import award

        return award(
            session,
            platform.plugin_settings(municipality, self.name),
            person_id=account_id,
            amount=amount,
            source=source,
            reference=reference,
            currency=currency,
        )


plugin = CurrencyPlugin()

__all__ = ["CurrencyPlugin", "plugin"]
