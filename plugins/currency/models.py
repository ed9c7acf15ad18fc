"""The currency ledger's tables, each owned by one municipality.

The ledger proper is :class:`Transfer` and :class:`Entry`: written once, never changed (on PostgreSQL triggers
refuse UPDATE and DELETE, and a deferred constraint trigger refuses a transfer whose entries do not sum to zero).
:class:`LedgerAccount` balances and :class:`Lot` remainders are the ledger's running totals, kept in the same
transaction as the entries; ``tsunagu currency verify`` recomputes them. Composite foreign keys carry the
currency, so an entry can only name an account of its transfer's currency.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, TenantScoped, UTCDateTime, municipality_column, utcnow

ACCOUNT_KINDS = ("resident", "merchant", "issuer", "fee", "expiry")
HOLDER_KINDS = ("resident", "merchant", "fee")
"""Accounts whose balance is outstanding value: issued − redeemed − expired equals their sum."""
SYSTEM_KINDS = ("issuer", "fee", "expiry")
SYSTEM_OWNER = uuid.UUID(int=0)
"""``owner_id`` of the municipality's own accounts (issuer, fee, expiry): one of each per currency."""
TRANSFER_KINDS = ("issue", "award", "payment", "refund", "redeem", "expire", "reversal")
LOT_SOURCES = ("purchased", "bonus", "award", "refund")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class LedgerAccount(TenantScoped, Base):
    """An account in one currency: a resident's wallet, a shop's till, or the municipality's own."""

    __tablename__ = "currency_accounts"

    municipality_id: Mapped[int] = municipality_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    currency: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16))
    owner_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    """The person's account id (resident), the merchant id (merchant), or :data:`SYSTEM_OWNER`."""
    balance: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        UniqueConstraint("municipality_id", "currency", "kind", "owner_id"),
        UniqueConstraint("municipality_id", "id", "currency"),
        CheckConstraint(_in("kind", ACCOUNT_KINDS), name="kind"),
        CheckConstraint(
            "(kind = 'issuer' AND balance <= 0) OR (kind <> 'issuer' AND balance >= 0)", name="balance_sign"
        ),
    )


class Transfer(TenantScoped, Base):
    """One movement of value: immutable; its entries sum to zero."""

    __tablename__ = "currency_transfers"

    municipality_id: Mapped[int] = municipality_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    currency: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    actor: Mapped[str] = mapped_column(String(80))
    """Who moved it, as the audit log names them (``account:<uuid>``, ``cli``, ``job:currency.expire_lots``)."""
    merchant_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    """The shop, for payments, refunds and redemptions (statements read by it)."""
    original_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    """For a refund: the payment it gives back."""
    reverses_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    """For a reversal: the transfer it undoes (at most one reversal each)."""
    source: Mapped[str | None] = mapped_column(String(40), nullable=True)
    reference: Mapped[str | None] = mapped_column(String(200), nullable=True)
    """``(source, reference)`` is unique: an award per (plugin, its reference), a sale paid once."""

    __table_args__ = (
        UniqueConstraint("municipality_id", "id", "currency"),
        UniqueConstraint("municipality_id", "source", "reference"),
        UniqueConstraint("municipality_id", "reverses_id"),
        ForeignKeyConstraint(
            ["municipality_id", "reverses_id"],
            ["currency_transfers.municipality_id", "currency_transfers.id"],
            name="fk_currency_transfers_reverses_id",
        ),
        ForeignKeyConstraint(
            ["municipality_id", "original_id"],
            ["currency_transfers.municipality_id", "currency_transfers.id"],
            name="fk_currency_transfers_original_id",
        ),
        CheckConstraint(_in("kind", TRANSFER_KINDS), name="kind"),
        CheckConstraint("(source IS NULL) = (reference IS NULL)", name="source_reference"),
        Index("ix_currency_transfers_merchant", "municipality_id", "merchant_id", "created_at"),
        Index("ix_currency_transfers_original", "municipality_id", "original_id"),
        Index("ix_currency_transfers_created", "municipality_id", "created_at"),
    )


class Entry(TenantScoped, Base):
    """One line of a transfer: ``amount`` (non-zero) added to one account's balance."""

    __tablename__ = "currency_entries"

    municipality_id: Mapped[int] = municipality_column(primary_key=True)
    transfer_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    line: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    account_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    currency: Mapped[str] = mapped_column(String(16))
    amount: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    """The transfer's time, repeated so balances as of a date need no join."""

    __table_args__ = (
        ForeignKeyConstraint(
            ["municipality_id", "transfer_id", "currency"],
            ["currency_transfers.municipality_id", "currency_transfers.id", "currency_transfers.currency"],
        ),
        ForeignKeyConstraint(
            ["municipality_id", "account_id", "currency"],
            ["currency_accounts.municipality_id", "currency_accounts.id", "currency_accounts.currency"],
        ),
        CheckConstraint("amount <> 0", name="amount_not_zero"),
        Index("ix_currency_entries_account", "municipality_id", "account_id", "created_at"),
    )


class Lot(TenantScoped, Base):
    """Value a resident holds from one credit, with its own expiry; spending draws the oldest lots first."""

    __tablename__ = "currency_lots"

    municipality_id: Mapped[int] = municipality_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    account_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    transfer_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    """The transfer that credited it."""
    source: Mapped[str] = mapped_column(String(16))
    amount: Mapped[int] = mapped_column(BigInteger)
    remaining: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        ForeignKeyConstraint(
            ["municipality_id", "account_id"], ["currency_accounts.municipality_id", "currency_accounts.id"]
        ),
        ForeignKeyConstraint(
            ["municipality_id", "transfer_id"],
            ["currency_transfers.municipality_id", "currency_transfers.id"],
        ),
        CheckConstraint(_in("source", LOT_SOURCES), name="source"),
        CheckConstraint("amount > 0 AND remaining >= 0 AND remaining <= amount", name="remaining"),
        Index("ix_currency_lots_account", "municipality_id", "account_id", "created_at"),
        Index("ix_currency_lots_expiry", "municipality_id", "expires_at"),
    )


class LotDraw(TenantScoped, Base):
    """What a transfer took from a lot (spent, expired or reversed): immutable, like the entries."""

    __tablename__ = "currency_lot_draws"

    municipality_id: Mapped[int] = municipality_column(primary_key=True)
    transfer_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    lot_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    amount: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (
        ForeignKeyConstraint(
            ["municipality_id", "transfer_id"],
            ["currency_transfers.municipality_id", "currency_transfers.id"],
        ),
        ForeignKeyConstraint(
            ["municipality_id", "lot_id"], ["currency_lots.municipality_id", "currency_lots.id"]
        ),
        CheckConstraint("amount > 0", name="amount_positive"),
        Index("ix_currency_lot_draws_lot", "municipality_id", "lot_id"),
    )


class Merchant(TenantScoped, Base):
    """A registered local shop that takes the municipality's currencies."""

    __tablename__ = "currency_merchants"

    municipality_id: Mapped[int] = municipality_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(100))
    category: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class MerchantMember(TenantScoped, Base):
    """A person who may take payments, give refunds and read statements for a shop."""

    __tablename__ = "currency_merchant_members"

    municipality_id: Mapped[int] = municipality_column(primary_key=True)
    merchant_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    account_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        ForeignKeyConstraint(
            ["municipality_id", "merchant_id"],
            ["currency_merchants.municipality_id", "currency_merchants.id"],
        ),
    )


class HolderProfile(TenantScoped, Base):
    """The one fact the statistics need that the person record lacks: the year of birth, if the resident gave it.

    Nothing else about the person is copied here; the district of residence is read from the person's address
    (postal code) when a week's statistics are made.
    """

    __tablename__ = "currency_holder_profiles"

    municipality_id: Mapped[int] = municipality_column(primary_key=True)
    account_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    birth_year: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    __table_args__ = (
        CheckConstraint("birth_year IS NULL OR birth_year BETWEEN 1900 AND 2100", name="birth_year"),
    )


class IdempotencyKey(TenantScoped, Base):
    """The first answer to a value-moving request, kept under the caller's ``Idempotency-Key``."""

    __tablename__ = "currency_idempotency_keys"

    municipality_id: Mapped[int] = municipality_column(primary_key=True)
    caller: Mapped[str] = mapped_column(String(80), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)
    response: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class StatsWeek(TenantScoped, Base):
    """A published week of purchase statistics: made once the week is over, never changed afterwards."""

    __tablename__ = "currency_stats_weeks"

    municipality_id: Mapped[int] = municipality_column(primary_key=True)
    currency: Mapped[str] = mapped_column(String(16), primary_key=True)
    week: Mapped[str] = mapped_column(String(8), primary_key=True)
    """ISO week, ``2026-W07``."""
    min_people: Mapped[int] = mapped_column(Integer)
    """k in force when the week was published."""
    people: Mapped[int | None] = mapped_column(Integer, nullable=True)
    amount: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    """The week's total; ``NULL`` when fewer than k people paid that week."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class StatsCell(TenantScoped, Base):
    """One cell of a published week: merchant category × age band × district. ``NULL`` values: suppressed."""

    __tablename__ = "currency_stats_cells"

    municipality_id: Mapped[int] = municipality_column(primary_key=True)
    currency: Mapped[str] = mapped_column(String(16), primary_key=True)
    week: Mapped[str] = mapped_column(String(8), primary_key=True)
    category: Mapped[str] = mapped_column(String(32), primary_key=True)
    age_band: Mapped[str] = mapped_column(String(8), primary_key=True)
    district: Mapped[str] = mapped_column(String(32), primary_key=True)
    people: Mapped[int | None] = mapped_column(Integer, nullable=True)
    payments: Mapped[int | None] = mapped_column(Integer, nullable=True)
    amount: Mapped[int | None] = mapped_column(BigInteger, nullable=True)

    __table_args__ = (
        ForeignKeyConstraint(
            ["municipality_id", "currency", "week"],
            [
                "currency_stats_weeks.municipality_id",
                "currency_stats_weeks.currency",
                "currency_stats_weeks.week",
            ],
        ),
    )
