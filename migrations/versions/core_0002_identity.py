"""Core: accounts, credentials, roles and permission grants per municipality, sessions, API keys, signing keys.

Revision ID: core_0002
Revises: core_0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from core.db.base import UTCDateTime
from core.db.migration import municipality_fk
from core.db.rls import disable_tenant_isolation, enable_tenant_isolation

revision = "core_0002"
down_revision = "core_0001"
branch_labels = None
depends_on = None

TENANT_TABLES = ("role_grants", "permission_grants", "auth_sessions", "api_keys", "oidc_login_states")


def _account_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["account_id"], ["accounts.id"], ondelete="CASCADE", name=f"fk_{table}_account_id_accounts"
    )


def upgrade() -> None:
    with op.batch_alter_table("municipalities") as batch:
        batch.add_column(sa.Column("auth", sa.JSON(), nullable=True))
    op.create_table(
        "accounts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("email", sa.String(254), nullable=True),
        sa.Column("display_name", sa.String(100), nullable=False),
        sa.Column("family_name", sa.String(50), nullable=True),
        sa.Column("given_name", sa.String(50), nullable=True),
        sa.Column("family_name_kana", sa.String(100), nullable=True),
        sa.Column("given_name_kana", sa.String(100), nullable=True),
        sa.Column("phone", sa.String(20), nullable=True),
        sa.Column("postal_code", sa.String(8), nullable=True),
        sa.Column("prefecture", sa.String(10), nullable=True),
        sa.Column("city", sa.String(50), nullable=True),
        sa.Column("town", sa.String(100), nullable=True),
        sa.Column("street", sa.String(100), nullable=True),
        sa.Column("building", sa.String(100), nullable=True),
        sa.Column("residence_municipality_id", sa.Integer(), nullable=True),
        sa.Column("locale", sa.String(8), nullable=False),
        sa.Column("is_operator", sa.Boolean(), nullable=False),
        sa.Column("disabled_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_accounts"),
        sa.UniqueConstraint("email", name="uq_accounts_email"),
        sa.ForeignKeyConstraint(
            ["residence_municipality_id"],
            ["municipalities.id"],
            ondelete="RESTRICT",
            name="fk_accounts_residence_municipality_id_municipalities",
        ),
    )
    op.create_table(
        "password_credentials",
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("account_id", name="pk_password_credentials"),
        _account_fk("password_credentials"),
    )
    op.create_table(
        "oidc_identities",
        sa.Column("issuer", sa.String(255), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("issuer", "subject", name="pk_oidc_identities"),
        _account_fk("oidc_identities"),
    )
    op.create_index("ix_oidc_identities_account_id", "oidc_identities", ["account_id"])
    op.create_table(
        "login_throttles",
        sa.Column("key", sa.String(100), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("window_started_at", UTCDateTime(), nullable=False),
        sa.Column("locked_until", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("key", name="pk_login_throttles"),
    )
    op.create_table(
        "signing_keyrings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("blob", sa.LargeBinary(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_signing_keyrings"),
    )
    op.create_table(
        "role_grants",
        sa.Column("municipality_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("granted_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("municipality_id", "account_id", "role", name="pk_role_grants"),
        municipality_fk("role_grants"),
        _account_fk("role_grants"),
    )
    op.create_table(
        "permission_grants",
        sa.Column("municipality_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("permission", sa.String(80), nullable=False),
        sa.PrimaryKeyConstraint("municipality_id", "role", "permission", name="pk_permission_grants"),
        municipality_fk("permission_grants"),
    )
    op.create_table(
        "auth_sessions",
        sa.Column("municipality_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("municipality_id", "token_hash", name="pk_auth_sessions"),
        sa.UniqueConstraint("token_hash", name="uq_auth_sessions_token_hash"),
        municipality_fk("auth_sessions"),
        _account_fk("auth_sessions"),
    )
    op.create_index("ix_auth_sessions_account_id", "auth_sessions", ["account_id"])
    op.create_table(
        "api_keys",
        sa.Column("municipality_id", sa.Integer(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=True),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.Column("last_used_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("municipality_id", "id", name="pk_api_keys"),
        sa.UniqueConstraint("prefix", name="uq_api_keys_prefix"),
        municipality_fk("api_keys"),
    )
    op.create_table(
        "oidc_login_states",
        sa.Column("municipality_id", sa.Integer(), nullable=False),
        sa.Column("state_hash", sa.String(64), nullable=False),
        sa.Column("nonce", sa.String(64), nullable=False),
        sa.Column("code_verifier", sa.String(128), nullable=False),
        sa.Column("redirect_to", sa.String(2048), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("used_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("municipality_id", "state_hash", name="pk_oidc_login_states"),
        municipality_fk("oidc_login_states"),
    )
    for table in TENANT_TABLES:
        enable_tenant_isolation(op, table)


def downgrade() -> None:
    for table in reversed(TENANT_TABLES):
        disable_tenant_isolation(op, table)
        op.drop_table(table)
    op.drop_table("signing_keyrings")
    op.drop_table("login_throttles")
    op.drop_index("ix_oidc_identities_account_id", table_name="oidc_identities")
    op.drop_table("oidc_identities")
    op.drop_table("password_credentials")
    op.drop_table("accounts")
    with op.batch_alter_table("municipalities") as batch:
        batch.drop_column("auth")
