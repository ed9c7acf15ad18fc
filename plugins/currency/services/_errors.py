"""The currency plugin's own errors: each a core error, so HTTP and the CLI report them the usual way."""

from __future__ import annotations

from core.exceptions import Conflict, InvalidInput, PlatformError


class InsufficientBalance(Conflict):
    """The paying account does not hold enough usable value; nothing moved."""

    title = "Insufficient balance"


class LimitExceeded(InvalidInput):
    """A municipality's limit (per payment, per day, maximum balance) would be broken; nothing moved."""

    title = "Limit exceeded"


class CurrencyMismatch(InvalidInput):
    """A transfer would move value between two currencies, which is never allowed."""

    title = "Transfers between currencies are refused"


class LedgerDoesNotVerify(PlatformError):
    """``verify`` found a problem: the message names the first one."""

    title = "The currency ledger does not verify"
    exit_code = 1
