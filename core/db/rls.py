"""Row-level security for tenant tables on PostgreSQL, used by migrations.

Each tenant table gets ENABLE and FORCE ROW LEVEL SECURITY (FORCE, so the table owner is held too) and one policy:
a row is visible and writable only when its ``municipality_id`` equals the transaction's
``tsunagu.municipality_id`` setting, or when the transaction declared itself platform-wide. Superusers and roles
with BYPASSRLS still bypass every policy: the application must connect as a role that is neither
(``docs/operations.md``), and start-up warns when it does not.
"""

from __future__ import annotations

from typing import Any

POLICY_NAME = "tenant_isolation"

_CONDITION = (
    "(current_setting('tsunagu.platform', true) = 'on' OR "
    "municipality_id = NULLIF(current_setting('tsunagu.municipality_id', true), '')::integer)"
)


def enable_tenant_isolation(op: Any, table: str) -> None:
    """Alembic helper: turn on row-level security for one tenant table (no-op outside PostgreSQL)."""
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f'ALTER TABLE "{table}" ENABLE ROW LEVEL SECURITY')
    op.execute(f'ALTER TABLE "{table}" FORCE ROW LEVEL SECURITY')
    op.execute(f'CREATE POLICY {POLICY_NAME} ON "{table}" USING {_CONDITION} WITH CHECK {_CONDITION}')


def disable_tenant_isolation(op: Any, table: str) -> None:
    """Alembic helper for downgrades: drop the policy and row-level security from one table."""
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f'DROP POLICY IF EXISTS {POLICY_NAME} ON "{table}"')
    op.execute(f'ALTER TABLE "{table}" NO FORCE ROW LEVEL SECURITY')
    op.execute(f'ALTER TABLE "{table}" DISABLE ROW LEVEL SECURITY')


ROLE_CHECK_SQL = "SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user"
