"""currency: the ledger (accounts, transfers, entries, lots, draws), merchants, idempotency keys, statistics.

On PostgreSQL also: triggers that refuse UPDATE and DELETE of transfers, entries and lot draws, and deferred
constraint triggers that refuse, at commit, a transfer with fewer than two entries or entries that do not sum to
zero. On SQLite, the same immutability triggers (the balance check is the application's and ``verify``'s).

Revision ID: currency_0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from core.db.base import UTCDateTime
from core.db.migration import tenant_columns
from core.db.rls import disable_tenant_isolation, enable_tenant_isolation

revision = "currency_0001"
down_revision = None
branch_labels = ("currency",)
depends_on = "core_0002"

TABLES = (
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
)
IMMUTABLE = ("currency_transfers", "currency_entries", "currency_lot_draws")

ACCOUNT_KINDS = "kind IN ('resident', 'merchant', 'issuer', 'fee', 'expiry')"
TRANSFER_KINDS = "kind IN ('issue', 'award', 'payment', 'refund', 'redeem', 'expire', 'reversal')"
LOT_SOURCES = "source IN ('purchased', 'bonus', 'award', 'refund')"


def _create_tables() -> None:
    op.create_table(
        "currency_accounts",
        *tenant_columns("currency_accounts"),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("currency", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("balance", sa.BigInteger(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("municipality_id", "id", name="pk_currency_accounts"),
        sa.UniqueConstraint(
            "municipality_id",
            "currency",
            "kind",
            "owner_id",
            name="uq_currency_accounts_municipality_id_currency_kind_owner_id",
        ),
        sa.UniqueConstraint(
            "municipality_id", "id", "currency", name="uq_currency_accounts_municipality_id_id_currency"
        ),
        sa.CheckConstraint(ACCOUNT_KINDS, name="ck_currency_accounts_kind"),
        sa.CheckConstraint(
            "(kind = 'issuer' AND balance <= 0) OR (kind <> 'issuer' AND balance >= 0)",
            name="ck_currency_accounts_balance_sign",
        ),
    )
    op.create_table(
        "currency_transfers",
        *tenant_columns("currency_transfers"),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("currency", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(80), nullable=False),
        sa.Column("merchant_id", sa.Uuid(), nullable=True),
        sa.Column("original_id", sa.Uuid(), nullable=True),
        sa.Column("reverses_id", sa.Uuid(), nullable=True),
        sa.Column("source", sa.String(40), nullable=True),
        sa.Column("reference", sa.String(200), nullable=True),
        sa.PrimaryKeyConstraint("municipality_id", "id", name="pk_currency_transfers"),
        sa.UniqueConstraint(
            "municipality_id", "id", "currency", name="uq_currency_transfers_municipality_id_id_currency"
        ),
        sa.UniqueConstraint(
            "municipality_id",
            "source",
            "reference",
            name="uq_currency_transfers_municipality_id_source_reference",
        ),
        sa.UniqueConstraint(
            "municipality_id", "reverses_id", name="uq_currency_transfers_municipality_id_reverses_id"
        ),
        sa.ForeignKeyConstraint(
            ["municipality_id", "reverses_id"],
            ["currency_transfers.municipality_id", "currency_transfers.id"],
            name="fk_currency_transfers_reverses_id",
        ),
        sa.ForeignKeyConstraint(
            ["municipality_id", "original_id"],
            ["currency_transfers.municipality_id", "currency_transfers.id"],
            name="fk_currency_transfers_original_id",
        ),
        sa.CheckConstraint(TRANSFER_KINDS, name="ck_currency_transfers_kind"),
        sa.CheckConstraint(
            "(source IS NULL) = (reference IS NULL)", name="ck_currency_transfers_source_reference"
        ),
    )
    op.create_index(
        "ix_currency_transfers_merchant",
        "currency_transfers",
        ["municipality_id", "merchant_id", "created_at"],
    )
    op.create_index(
        "ix_currency_transfers_original", "currency_transfers", ["municipality_id", "original_id"]
    )
    op.create_index("ix_currency_transfers_created", "currency_transfers", ["municipality_id", "created_at"])
    op.create_table(
        "currency_entries",
        *tenant_columns("currency_entries"),
        sa.Column("transfer_id", sa.Uuid(), nullable=False),
        sa.Column("line", sa.SmallInteger(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("currency", sa.String(16), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("municipality_id", "transfer_id", "line", name="pk_currency_entries"),
        sa.ForeignKeyConstraint(
            ["municipality_id", "transfer_id", "currency"],
            ["currency_transfers.municipality_id", "currency_transfers.id", "currency_transfers.currency"],
            name="fk_currency_entries_municipality_id_currency_transfers",
        ),
        sa.ForeignKeyConstraint(
            ["municipality_id", "account_id", "currency"],
            ["currency_accounts.municipality_id", "currency_accounts.id", "currency_accounts.currency"],
            name="fk_currency_entries_municipality_id_currency_accounts",
        ),
        sa.CheckConstraint("amount <> 0", name="ck_currency_entries_amount_not_zero"),
    )
    op.create_index(
        "ix_currency_entries_account", "currency_entries", ["municipality_id", "account_id", "created_at"]
    )
    op.create_table(
        "currency_lots",
        *tenant_columns("currency_lots"),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("transfer_id", sa.Uuid(), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("remaining", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("municipality_id", "id", name="pk_currency_lots"),
        sa.ForeignKeyConstraint(
            ["municipality_id", "account_id"],
            ["currency_accounts.municipality_id", "currency_accounts.id"],
            name="fk_currency_lots_municipality_id_currency_accounts",
        ),
        sa.ForeignKeyConstraint(
            ["municipality_id", "transfer_id"],
            ["currency_transfers.municipality_id", "currency_transfers.id"],
            name="fk_currency_lots_municipality_id_currency_transfers",
        ),
        sa.CheckConstraint(LOT_SOURCES, name="ck_currency_lots_source"),
        sa.CheckConstraint(
            "amount > 0 AND remaining >= 0 AND remaining <= amount", name="ck_currency_lots_remaining"
        ),
    )
    op.create_index(
        "ix_currency_lots_account", "currency_lots", ["municipality_id", "account_id", "created_at"]
    )
    op.create_index("ix_currency_lots_expiry", "currency_lots", ["municipality_id", "expires_at"])
    op.create_table(
        "currency_lot_draws",
        *tenant_columns("currency_lot_draws"),
        sa.Column("transfer_id", sa.Uuid(), nullable=False),
        sa.Column("lot_id", sa.Uuid(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("municipality_id", "transfer_id", "lot_id", name="pk_currency_lot_draws"),
        sa.ForeignKeyConstraint(
            ["municipality_id", "transfer_id"],
            ["currency_transfers.municipality_id", "currency_transfers.id"],
            name="fk_currency_lot_draws_municipality_id_currency_transfers",
        ),
        sa.ForeignKeyConstraint(
            ["municipality_id", "lot_id"],
            ["currency_lots.municipality_id", "currency_lots.id"],
            name="fk_currency_lot_draws_municipality_id_currency_lots",
        ),
        sa.CheckConstraint("amount > 0", name="ck_currency_lot_draws_amount_positive"),
    )
    op.create_index("ix_currency_lot_draws_lot", "currency_lot_draws", ["municipality_id", "lot_id"])
    op.create_table(
        "currency_merchants",
        *tenant_columns("currency_merchants"),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("category", sa.String(32), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("closed_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("municipality_id", "id", name="pk_currency_merchants"),
    )
    op.create_table(
        "currency_merchant_members",
        *tenant_columns("currency_merchant_members"),
        sa.Column("merchant_id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint(
            "municipality_id", "merchant_id", "account_id", name="pk_currency_merchant_members"
        ),
        sa.ForeignKeyConstraint(
            ["municipality_id", "merchant_id"],
            ["currency_merchants.municipality_id", "currency_merchants.id"],
            name="fk_currency_merchant_members_municipality_id_currency_merchants",
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            ondelete="CASCADE",
            name="fk_currency_merchant_members_account_id_accounts",
        ),
    )
    op.create_table(
        "currency_holder_profiles",
        *tenant_columns("currency_holder_profiles"),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("birth_year", sa.SmallInteger(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("municipality_id", "account_id", name="pk_currency_holder_profiles"),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            ondelete="CASCADE",
            name="fk_currency_holder_profiles_account_id_accounts",
        ),
        sa.CheckConstraint(
            "birth_year IS NULL OR birth_year BETWEEN 1900 AND 2100",
            name="ck_currency_holder_profiles_birth_year",
        ),
    )
    op.create_table(
        "currency_idempotency_keys",
        *tenant_columns("currency_idempotency_keys"),
        sa.Column("caller", sa.String(80), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status_code", sa.SmallInteger(), nullable=True),
        sa.Column("response", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("municipality_id", "caller", "key", name="pk_currency_idempotency_keys"),
    )
    op.create_table(
        "currency_stats_weeks",
        *tenant_columns("currency_stats_weeks"),
        sa.Column("currency", sa.String(16), nullable=False),
        sa.Column("week", sa.String(8), nullable=False),
        sa.Column("min_people", sa.Integer(), nullable=False),
        sa.Column("people", sa.Integer(), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("municipality_id", "currency", "week", name="pk_currency_stats_weeks"),
    )
    op.create_table(
        "currency_stats_cells",
        *tenant_columns("currency_stats_cells"),
        sa.Column("currency", sa.String(16), nullable=False),
        sa.Column("week", sa.String(8), nullable=False),
        sa.Column("category", sa.String(32), nullable=False),
        sa.Column("age_band", sa.String(8), nullable=False),
        sa.Column("district", sa.String(32), nullable=False),
        sa.Column("people", sa.Integer(), nullable=True),
        sa.Column("payments", sa.Integer(), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint(
            "municipality_id",
            "currency",
            "week",
            "category",
            "age_band",
            "district",
            name="pk_currency_stats_cells",
        ),
        sa.ForeignKeyConstraint(
            ["municipality_id", "currency", "week"],
            [
                "currency_stats_weeks.municipality_id",
                "currency_stats_weeks.currency",
                "currency_stats_weeks.week",
            ],
            name="fk_currency_stats_cells_municipality_id_currency_stats_weeks",
        ),
    )


def _postgres_triggers() -> None:
    op.execute(
        "CREATE FUNCTION currency_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "RAISE EXCEPTION '% rows are never changed or deleted: correct with a reversing transfer', TG_TABLE_NAME "
        "USING ERRCODE = '55000'; END $$"
    )
    for column, table in (("id", "transfer"), ("transfer_id", "entry")):
        op.execute(
            f"CREATE FUNCTION currency_check_{table}_balances() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "DECLARE lines integer; total numeric; BEGIN "
            "SELECT count(*), coalesce(sum(amount), 0) INTO lines, total FROM currency_entries "
            f"WHERE municipality_id = NEW.municipality_id AND transfer_id = NEW.{column}; "
            "IF lines < 2 OR total <> 0 THEN "
            f"RAISE EXCEPTION 'currency transfer % does not balance: % entries summing to %', NEW.{column}, "
            "lines, total USING ERRCODE = '23514'; END IF; RETURN NULL; END $$"
        )
    for table in IMMUTABLE:
        op.execute(
            f"CREATE TRIGGER {table}_immutable BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION currency_refuse_change()"
        )
    op.execute(
        "CREATE CONSTRAINT TRIGGER currency_transfers_balance AFTER INSERT ON currency_transfers "
        "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION currency_check_transfer_balances()"
    )
    op.execute(
        "CREATE CONSTRAINT TRIGGER currency_entries_balance AFTER INSERT ON currency_entries "
        "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION currency_check_entry_balances()"
    )


def _sqlite_triggers() -> None:
    for table in IMMUTABLE:
        for event in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{event.lower()} BEFORE {event} ON {table} BEGIN "
                f"SELECT RAISE(ABORT, '{table} rows are never changed or deleted: correct with a reversing "
                "transfer'); END"
            )


def upgrade() -> None:
    _create_tables()
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        _postgres_triggers()
    elif dialect == "sqlite":
        _sqlite_triggers()
    for table in TABLES:
        enable_tenant_isolation(op, table)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for table in reversed(TABLES):
        disable_tenant_isolation(op, table)
    if dialect == "sqlite":
        for table in IMMUTABLE:
            for event in ("update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{event}")
    for table in reversed(TABLES):
        op.drop_table(table)
    if dialect == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS currency_check_entry_balances()")
        op.execute("DROP FUNCTION IF EXISTS currency_check_transfer_balances()")
        op.execute("DROP FUNCTION IF EXISTS currency_refuse_change()")
