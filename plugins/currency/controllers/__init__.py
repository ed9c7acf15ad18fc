"""Routes of the currency plugin (mounted under ``/currency``). Every POST that moves value takes an
``Idempotency-Key`` header; see ``docs/currency.md`` for the whole API."""

from plugins.currency.controllers._shops import CodeImageController, ShopController, ShopDirectoryController
from plugins.currency.controllers._staff import IssueController, ManageController, StatsController
from plugins.currency.controllers._wallet import WalletController

CONTROLLERS = (
    WalletController,
    ShopDirectoryController,
    ShopController,
    CodeImageController,
    IssueController,
    ManageController,
    StatsController,
)

__all__ = ["CONTROLLERS"]
