"""booking: facilities, units, reservations, occupancies, waitlist, lottery; the no-double-booking guard.

The guard lives in the database, so no code path (HTTP, CLI, a job, a timer) can get around it:

- PostgreSQL: an exclusion constraint (btree_gist) over the municipality, the unit and the occupied time range,
  so two live reservations can never hold one unit at overlapping times, however many transactions race.
- SQLite: a trigger refusing an overlapping row; every write transaction there takes the database's write lock
  at BEGIN (``core.db.engine``), so the check and the insert are one serialized step.

Both: a trigger deletes a reservation's occupancy rows when its state leaves the live states (held, review,
won, confirmed), whoever made the transition (a resident, staff, the workflow's timers).

Revision ID: booking_0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from core.db.base import UTCDateTime
from core.db.migration import tenant_columns, tenant_reference
from core.db.rls import disable_tenant_isolation, enable_tenant_isolation

revision = "booking_0001"
down_revision = None
branch_labels = ("booking",)
depends_on = "core_0001"

TABLES = (
    "booking_facilities",
    "booking_units",
    "booking_reservations",
    "booking_occupancies",
    "booking_waitlist",
    "booking_lottery_applications",
    "booking_lottery_wishes",
    "booking_lottery_draws",
)
LIVE_STATES = "('held', 'review', 'won', 'confirmed')"


def _timestamps() -> list[sa.Column]:
    return [
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "booking_facilities",
        *tenant_columns("booking_facilities"),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("source_key", sa.String(120), nullable=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("name_kana", sa.String(200), nullable=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("address", sa.String(300), nullable=False),
        sa.Column("phone", sa.String(40), nullable=False),
        sa.Column("url", sa.String(500), nullable=False),
        sa.Column("latitude", sa.Float(), nullable=True),
        sa.Column("longitude", sa.Float(), nullable=True),
        sa.Column("hours", sa.JSON(), nullable=False),
        sa.Column("hours_exceptions", sa.JSON(), nullable=False),
        sa.Column("hours_note", sa.Text(), nullable=False),
        sa.Column("closed_on_holidays", sa.Boolean(), nullable=False),
        sa.Column("closed_year_end", sa.Boolean(), nullable=False),
        sa.Column("closed_dates", sa.JSON(), nullable=False),
        sa.Column("cancel_deadline_days", sa.Integer(), nullable=True),
        sa.Column("lottery_enabled", sa.Boolean(), nullable=False),
        sa.Column("lottery_opens_day", sa.Integer(), nullable=False),
        sa.Column("lottery_closes_day", sa.Integer(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("municipality_id", "id", name="pk_booking_facilities"),
        sa.UniqueConstraint("municipality_id", "source_key", name="uq_booking_facilities_source_key"),
    )
    op.create_table(
        "booking_units",
        *tenant_columns("booking_units"),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("facility_id", sa.Uuid(), nullable=False),
        sa.Column("parent_id", sa.Uuid(), nullable=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("slot_minutes", sa.Integer(), nullable=True),
        sa.Column("fixed_slots", sa.JSON(), nullable=False),
        sa.Column("setup_minutes", sa.Integer(), nullable=False),
        sa.Column("cleanup_minutes", sa.Integer(), nullable=False),
        sa.Column("fee_resident", sa.Integer(), nullable=False),
        sa.Column("fee_region", sa.Integer(), nullable=False),
        sa.Column("fee_other", sa.Integer(), nullable=False),
        sa.Column("requires_approval", sa.Boolean(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("municipality_id", "id", name="pk_booking_units"),
        tenant_reference(["facility_id"], "booking_facilities", "fk_booking_units_facility"),
        tenant_reference(["parent_id"], "booking_units", "fk_booking_units_parent"),
    )
    op.create_index("ix_booking_units_facility", "booking_units", ["municipality_id", "facility_id"])
    op.create_table(
        "booking_reservations",
        *tenant_columns("booking_reservations"),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("state_version", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Uuid(), nullable=False),
        sa.Column("facility_id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("starts_at", UTCDateTime(), nullable=False),
        sa.Column("ends_at", UTCDateTime(), nullable=False),
        sa.Column("person_class", sa.String(16), nullable=False),
        sa.Column("fee", sa.Integer(), nullable=False),
        sa.Column("exemption", sa.String(32), nullable=True),
        sa.Column("purpose", sa.String(200), nullable=False),
        sa.Column("attendees", sa.Integer(), nullable=True),
        sa.Column("needs_review", sa.Boolean(), nullable=False),
        sa.Column("cancel_until", UTCDateTime(), nullable=True),
        sa.Column("place", sa.String(300), nullable=False),
        sa.Column("local_time", sa.String(40), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("municipality_id", "id", name="pk_booking_reservations"),
        tenant_reference(["unit_id"], "booking_units", "fk_booking_reservations_unit"),
    )
    op.create_index(
        "ix_booking_reservations_unit_start",
        "booking_reservations",
        ["municipality_id", "unit_id", "starts_at"],
    )
    op.create_index(
        "ix_booking_reservations_account",
        "booking_reservations",
        ["municipality_id", "account_id", "starts_at"],
    )
    op.create_index("ix_booking_reservations_start", "booking_reservations", ["municipality_id", "starts_at"])
    op.create_table(
        "booking_occupancies",
        *tenant_columns("booking_occupancies"),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("reservation_id", sa.Uuid(), nullable=False),
        sa.Column("unit_id", sa.Uuid(), nullable=False),
        sa.Column("starts_at", UTCDateTime(), nullable=False),
        sa.Column("ends_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("municipality_id", "id", name="pk_booking_occupancies"),
        tenant_reference(
            ["reservation_id"], "booking_reservations", "fk_booking_occupancies_reservation", "CASCADE"
        ),
        tenant_reference(["unit_id"], "booking_units", "fk_booking_occupancies_unit"),
        sa.CheckConstraint("starts_at < ends_at", name="ck_booking_occupancies_range"),
    )
    op.create_index(
        "ix_booking_occupancies_unit_start",
        "booking_occupancies",
        ["municipality_id", "unit_id", "starts_at"],
    )
    op.create_index(
        "ix_booking_occupancies_reservation", "booking_occupancies", ["municipality_id", "reservation_id"]
    )
    op.create_table(
        "booking_waitlist",
        *tenant_columns("booking_waitlist"),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("unit_id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("starts_at", UTCDateTime(), nullable=False),
        sa.Column("ends_at", UTCDateTime(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reservation_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("municipality_id", "id", name="pk_booking_waitlist"),
        tenant_reference(["unit_id"], "booking_units", "fk_booking_waitlist_unit"),
    )
    op.create_index(
        "ix_booking_waitlist_unit_start", "booking_waitlist", ["municipality_id", "unit_id", "starts_at"]
    )
    op.create_table(
        "booking_lottery_applications",
        *tenant_columns("booking_lottery_applications"),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("facility_id", sa.Uuid(), nullable=False),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("group_name", sa.String(100), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("municipality_id", "id", name="pk_booking_lottery_applications"),
        tenant_reference(["facility_id"], "booking_facilities", "fk_booking_lottery_applications_facility"),
        sa.UniqueConstraint(
            "municipality_id",
            "facility_id",
            "month",
            "account_id",
            name="uq_booking_lottery_applications_once",
        ),
    )
    op.create_index(
        "ix_booking_lottery_applications_month", "booking_lottery_applications", ["municipality_id", "month"]
    )
    op.create_table(
        "booking_lottery_wishes",
        *tenant_columns("booking_lottery_wishes"),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("application_id", sa.Uuid(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Uuid(), nullable=False),
        sa.Column("starts_at", UTCDateTime(), nullable=False),
        sa.Column("ends_at", UTCDateTime(), nullable=False),
        sa.Column("won", sa.Boolean(), nullable=True),
        sa.Column("reservation_id", sa.Uuid(), nullable=True),
        sa.PrimaryKeyConstraint("municipality_id", "id", name="pk_booking_lottery_wishes"),
        tenant_reference(
            ["application_id"],
            "booking_lottery_applications",
            "fk_booking_lottery_wishes_application",
            "CASCADE",
        ),
        tenant_reference(["unit_id"], "booking_units", "fk_booking_lottery_wishes_unit"),
    )
    op.create_index(
        "ix_booking_lottery_wishes_application",
        "booking_lottery_wishes",
        ["municipality_id", "application_id"],
    )
    op.create_table(
        "booking_lottery_draws",
        *tenant_columns("booking_lottery_draws"),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("seed_sha256", sa.String(64), nullable=False),
        sa.Column("seed", sa.String(64), nullable=True),
        sa.Column("committed_at", UTCDateTime(), nullable=False),
        sa.Column("drawn_at", UTCDateTime(), nullable=True),
        sa.Column("winners", sa.Integer(), nullable=False),
        sa.Column("inputs", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("municipality_id", "month", name="pk_booking_lottery_draws"),
    )
    for table in TABLES:
        enable_tenant_isolation(op, table)
    if op.get_bind().dialect.name == "postgresql":
        _postgres_guard()
    else:
        _sqlite_guard()


def _postgres_guard() -> None:
    # Trusted extension since PostgreSQL 13: the database owner may create it without being a superuser.
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
    op.execute(
        "ALTER TABLE booking_occupancies ADD CONSTRAINT ex_booking_occupancies_no_overlap "
        "EXCLUDE USING gist (municipality_id WITH =, unit_id WITH =, "
        "tstzrange(starts_at, ends_at, '[)') WITH &&)"
    )
    op.execute(
        f"""
        CREATE FUNCTION booking_release_occupancies() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.state NOT IN {LIVE_STATES} THEN
                DELETE FROM booking_occupancies
                WHERE municipality_id = NEW.municipality_id AND reservation_id = NEW.id;
            END IF;
            RETURN NEW;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER booking_release_occupancies AFTER UPDATE OF state ON booking_reservations "
        "FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state) EXECUTE FUNCTION booking_release_occupancies()"
    )


def _sqlite_guard() -> None:
    overlap = (
        "EXISTS (SELECT 1 FROM booking_occupancies o WHERE o.municipality_id = NEW.municipality_id "
        "AND o.unit_id = NEW.unit_id AND o.id <> NEW.id AND o.starts_at < NEW.ends_at AND NEW.starts_at < o.ends_at)"
    )
    for event in ("INSERT", "UPDATE"):
        op.execute(
            f"CREATE TRIGGER booking_occupancies_no_overlap_{event.lower()} BEFORE {event} ON booking_occupancies "
            f"WHEN {overlap} BEGIN SELECT RAISE(ABORT, 'booking_occupancies overlap'); END"
        )
    op.execute(
        "CREATE TRIGGER booking_release_occupancies AFTER UPDATE OF state ON booking_reservations "
        f"WHEN NEW.state NOT IN {LIVE_STATES} AND OLD.state IS NOT NEW.state BEGIN "
        "DELETE FROM booking_occupancies WHERE municipality_id = NEW.municipality_id AND reservation_id = NEW.id; "
        "END"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS booking_release_occupancies ON booking_reservations")
        op.execute("DROP FUNCTION IF EXISTS booking_release_occupancies()")
    for table in reversed(TABLES):
        disable_tenant_isolation(op, table)
    for table in reversed(TABLES):
        op.drop_table(table)
