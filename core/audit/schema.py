"""The triggers that make the audit tables append-only, for the migration and for the retention purge.

PostgreSQL: one plpgsql function, fired BEFORE UPDATE OR DELETE on each row, raises; it lets a DELETE through
only when the transaction set ``tsunagu.audit_purge`` to ``on`` (``set_config(..., true)``: this transaction
only), which :func:`core.audit.retention.purge` alone does. UPDATE is refused always.

SQLite: two triggers per table (``... BEFORE UPDATE`` / ``... BEFORE DELETE``) that ``RAISE(ABORT, ...)``. The
purge drops the DELETE triggers and creates them again inside its own transaction (SQLite DDL is transactional,
and the purge holds the write lock, so no other connection ever sees them missing).

These guard against mistakes and against code that is not meant to delete. A role that owns the tables can
still disable them; what catches that is verification (:mod:`core.audit.verification`), not the triggers.

A later migration that batch-alters one of these tables on SQLite (which copies the table) must create the
triggers again: ``tests/integration/test_audit_log.py`` checks that they hold after migrating.
"""

from __future__ import annotations

from typing import Any

APPEND_ONLY_TABLES = ("audit_events", "audit_chain")
PURGE_SETTING = "tsunagu.audit_purge"
PG_FUNCTION = "tsunagu_audit_append_only"

_PG_FUNCTION_SQL = f"""
CREATE OR REPLACE FUNCTION {PG_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('{PURGE_SETTING}', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit log is append-only: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
END
$$
"""


def pg_trigger_name(table: str) -> str:
    return f"{table}_append_only"


def sqlite_trigger_name(table: str, operation: str) -> str:
    return f"{table}_no_{operation.lower()}"


def sqlite_trigger_sql(table: str, operation: str) -> str:
    """``CREATE TRIGGER`` refusing ``operation`` (``UPDATE`` or ``DELETE``) on ``table``."""
    return (
        f'CREATE TRIGGER {sqlite_trigger_name(table, operation)} BEFORE {operation} ON "{table}" '
        f"BEGIN SELECT RAISE(ABORT, 'audit log is append-only: {operation} on {table} refused'); END"
    )


def create_append_only_triggers(op: Any) -> None:
    """Alembic helper: make the audit tables append-only on the migrated database."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_FUNCTION_SQL)
        for table in APPEND_ONLY_TABLES:
            op.execute(
                f'CREATE TRIGGER {pg_trigger_name(table)} BEFORE UPDATE OR DELETE ON "{table}" '
                f"FOR EACH ROW EXECUTE FUNCTION {PG_FUNCTION}()"
            )
        return
    for table in APPEND_ONLY_TABLES:
        for operation in ("UPDATE", "DELETE"):
            op.execute(sqlite_trigger_sql(table, operation))


def drop_append_only_triggers(op: Any) -> None:
    """Alembic helper for the downgrade."""
    if op.get_bind().dialect.name == "postgresql":
        for table in APPEND_ONLY_TABLES:
            op.execute(f'DROP TRIGGER IF EXISTS {pg_trigger_name(table)} ON "{table}"')
        op.execute(f"DROP FUNCTION IF EXISTS {PG_FUNCTION}()")
        return
    for table in APPEND_ONLY_TABLES:
        for operation in ("UPDATE", "DELETE"):
            op.execute(f"DROP TRIGGER IF EXISTS {sqlite_trigger_name(table, operation)}")
