"""The currency plugin's domain logic: the ledger and everything that moves value through it. No HTTP in here.

Every function takes a session bound to one municipality (the core filters and stamps ``municipality_id``) and
works in the caller's transaction; value-moving ones audit each movement there too (``actor`` as the audit log
names them). Times default to now; tests pass ``now`` to move through expiries and weeks.
"""

from plugins.currency.services._accounts import currency_of, find_account, system_account
from plugins.currency.services._analytics import (
    CSV_COLUMNS,
    last_finished_week,
    parse_week,
    publish_week,
    stats_csv,
    stats_rows,
    suppress,
    week_name,
    weekly_stats,
)
from plugins.currency.services._codes import (
    MEDIA_TYPES,
    PaymentCode,
    code_key,
    make_code,
    qr_image,
    read_code,
)
from plugins.currency.services._errors import CurrencyMismatch, InsufficientBalance, LimitExceeded
from plugins.currency.services._expiry import Expiring, due_accounts, expire_account, expiring_soon
from plugins.currency.services._idempotency import (
    Replay,
    check_key,
    claim,
    forget_old_keys,
    remember,
    request_hash,
)
from plugins.currency.services._issuing import award, issue, redeem, reverse
from plugins.currency.services._ledger import Leg, NewLot, lock_accounts, post
from plugins.currency.services._merchants import (
    add_member,
    close_merchant,
    get_merchant,
    is_member,
    list_merchants,
    open_merchant,
    register_merchant,
)
from plugins.currency.services._payments import SALE_SOURCE, pay, refund, refunded_so_far, sale_code
from plugins.currency.services._reports import REFERENCE_DATES, outstanding, statement, statements
from plugins.currency.services._verify import CurrencyTotals, Report, verify
from plugins.currency.services._wallets import history, profile, set_profile, wallet

__all__ = [
    "CSV_COLUMNS",
    "MEDIA_TYPES",
    "REFERENCE_DATES",
    "SALE_SOURCE",
    "CurrencyMismatch",
    "CurrencyTotals",
    "Expiring",
    "InsufficientBalance",
    "Leg",
    "LimitExceeded",
    "NewLot",
    "PaymentCode",
    "Replay",
    "Report",
    "add_member",
    "award",
    "check_key",
    "claim",
    "close_merchant",
    "code_key",
    "currency_of",
    "due_accounts",
    "expire_account",
    "expiring_soon",
    "find_account",
    "forget_old_keys",
    "get_merchant",
    "history",
    "is_member",
    "issue",
    "last_finished_week",
    "list_merchants",
    "lock_accounts",
    "make_code",
    "open_merchant",
    "outstanding",
    "parse_week",
    "pay",
    "post",
    "profile",
    "publish_week",
    "qr_image",
    "read_code",
    "redeem",
    "refund",
    "refunded_so_far",
    "register_merchant",
    "remember",
    "request_hash",
    "reverse",
    "sale_code",
    "set_profile",
    "statement",
    "statements",
    "stats_csv",
    "stats_rows",
    "suppress",
    "system_account",
    "verify",
    "wallet",
    "week_name",
    "weekly_stats",
]
