"""Wire types of the currency plugin. Amounts are integers (whole units of the currency), never floats."""

from __future__ import annotations

import uuid
from datetime import date, datetime

import msgspec


class Struct(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    pass


# --- requests -------------------------------------------------------------------------------------------------


class IssueIn(Struct):
    """A top-up by staff: purchased value (paid for in yen) and bonus (premium) value, kept in separate lots."""

    account_id: uuid.UUID
    currency: str
    purchased: int = 0
    bonus: int = 0


class PayIn(Struct):
    code: str
    """The text of the shop's QR code."""
    amount: int | None = None
    """Required for a shop's fixed code; for a per-sale code it may be given and must equal the sale's."""


class RefundIn(Struct):
    payment_id: uuid.UUID
    amount: int


class RedeemIn(Struct):
    """Settlement: the municipality pays the shop out (in yen) and takes the value back."""

    merchant_id: uuid.UUID
    currency: str
    amount: int | None = None
    """The whole balance when omitted."""


class SaleIn(Struct):
    amount: int
    currency: str | None = None
    """The municipality's first currency when omitted."""
    ttl_seconds: int | None = None


class MerchantIn(Struct):
    name: str
    category: str


class MemberIn(Struct):
    account_id: uuid.UUID


class ProfileIn(Struct):
    birth_year: int | None = None
    """Year of birth, used only for the age bands of the purchase statistics; ``null`` removes it."""


# --- answers --------------------------------------------------------------------------------------------------


class TransferOut(Struct):
    id: uuid.UUID
    kind: str
    currency: str
    amount: int
    """The value moved (for a payment: what the payer paid, fee included)."""
    created_at: datetime
    merchant_id: uuid.UUID | None = None
    balance: int | None = None
    """The balance, after the transfer, of the account the caller cares about (payer, shop, resident)."""


class PaymentOut(Struct):
    id: uuid.UUID
    currency: str
    amount: int
    fee: int
    merchant_id: uuid.UUID
    merchant_name: str
    balance: int
    """The payer's balance afterwards."""
    created_at: datetime


class AwardOut(Struct):
    transfer_id: uuid.UUID
    currency: str
    amount: int
    created: bool
    """False when this (source, reference) had been awarded before: nothing moved this time."""


class LotOut(Struct):
    source: str
    remaining: int
    expires_at: datetime


class WalletCurrency(Struct):
    currency: str
    name: str
    balance: int
    usable: int
    """What can be spent now: the balance less value past its expiry and not yet moved out."""
    expiring_soon: int
    """Value that expires within the notice period."""
    lots: list[LotOut]


class WalletOut(Struct):
    currencies: list[WalletCurrency]


class HistoryItem(Struct):
    transfer_id: uuid.UUID
    kind: str
    currency: str
    amount: int
    """Signed: what this movement added to (or took from) the wallet."""
    created_at: datetime
    merchant_name: str | None = None


class SaleOut(Struct):
    sale_id: uuid.UUID
    merchant_id: uuid.UUID
    currency: str
    amount: int
    expires_at: datetime
    code: str


class CodeOut(Struct):
    merchant_id: uuid.UUID
    currency: str
    code: str


class MerchantOut(Struct):
    id: uuid.UUID
    name: str
    category: str
    created_at: datetime
    closed_at: datetime | None = None


class ProfileOut(Struct):
    birth_year: int | None = None


class StatementOut(Struct):
    """What a shop received and is owed over a period (dates in the municipality's time zone, inclusive)."""

    merchant_id: uuid.UUID
    merchant_name: str
    currency: str
    start: date
    end: date
    opening_balance: int
    payments: int
    gross: int
    """What payers paid, fees included."""
    fees: int
    refunds: int
    refunded: int
    redeemed: int
    """Paid out to the shop in the period (settlements)."""
    corrections: int
    """Reversing transfers in the period (signed)."""
    closing_balance: int
    """What the shop is owed at the end of the period."""


class OutstandingOut(Struct):
    """Unused balance at a legal reference date (基準日: 3/31 and 9/30), at the end of that day."""

    currency: str
    reference_date: date
    as_of: datetime
    issued: int
    redeemed: int
    expired: int
    residents: int
    """Held by residents: the 未使用残高 of prepaid value."""
    merchants: int
    fees: int
    outstanding: int
    """issued − redeemed − expired = residents + merchants + fees."""


class StatsCellOut(Struct):
    category: str
    age_band: str
    district: str
    people: int | None
    payments: int | None
    amount: int | None
    """``null``: suppressed (fewer than k people, or suppressed so that another suppressed cell cannot be worked
    out from the week's total)."""


class StatsWeekOut(Struct):
    week: str
    people: int | None
    amount: int | None
    min_people: int
    cells: list[StatsCellOut]


class StatsOut(Struct):
    currency: str
    weeks: list[StatsWeekOut]
