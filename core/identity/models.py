"""Identity tables: one account per person for the whole region, and what each holds per municipality.

Accounts, password hashes, OpenID links and login throttling are platform-wide (a person is one person in every
town). Roles, extra permission grants, browser sessions and API keys are tenant-scoped: they exist in one
municipality, and row-level security keeps them there.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, LargeBinary, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base, TenantScoped, TimestampMixin, UTCDateTime, municipality_column, utcnow


class Account(TimestampMixin, Base):
    """A person. No field for マイナンバー exists, by design."""

    __tablename__ = "accounts"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    email: Mapped[str | None] = mapped_column(String(254), unique=True, nullable=True)
    display_name: Mapped[str] = mapped_column(String(100))
    family_name: Mapped[str | None] = mapped_column(String(50), nullable=True)
    given_name: Mapped[str | None] = mapped_column(String(50), nullable=True)
    family_name_kana: Mapped[str | None] = mapped_column(String(100), nullable=True)
    given_name_kana: Mapped[str | None] = mapped_column(String(100), nullable=True)
    phone: Mapped[str | None] = mapped_column(String(20), nullable=True)
    postal_code: Mapped[str | None] = mapped_column(String(8), nullable=True)
    prefecture: Mapped[str | None] = mapped_column(String(10), nullable=True)
    city: Mapped[str | None] = mapped_column(String(50), nullable=True)
    town: Mapped[str | None] = mapped_column(String(100), nullable=True)
    street: Mapped[str | None] = mapped_column(String(100), nullable=True)
    building: Mapped[str | None] = mapped_column(String(100), nullable=True)
    residence_municipality_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("municipalities.id", ondelete="RESTRICT"), nullable=True
    )
    locale: Mapped[str] = mapped_column(String(8), default="ja")
    is_operator: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class PasswordCredential(Base):
    """A local password (argon2 hash) for towns without an OpenID provider, and for the demo."""

    __tablename__ = "password_credentials"

    account_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    password_hash: Mapped[str] = mapped_column(String(255))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class OidcIdentity(Base):
    """Links an OpenID provider's subject to an account."""

    __tablename__ = "oidc_identities"

    issuer: Mapped[str] = mapped_column(String(255), primary_key=True)
    subject: Mapped[str] = mapped_column(String(255), primary_key=True)
    account_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class LoginThrottle(Base):
    """Login attempts per key (``email:<sha256 of the email>`` or ``address:<ip>``), shared by every process.

    Keyed by the email as submitted rather than the account, so unknown emails are throttled alike
    (``core.identity.throttle``).
    """

    __tablename__ = "login_throttles"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class SigningKeyRing(Base):
    """The JWT signing keys, encrypted with a key derived from ``TSUNAGU_SECRET_KEY`` (one row)."""

    __tablename__ = "signing_keyrings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    blob: Mapped[bytes] = mapped_column(LargeBinary)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class RoleGrant(TenantScoped, Base):
    """A role (resident, staff, admin) held by an account in one municipality."""

    __tablename__ = "role_grants"

    municipality_id: Mapped[int] = municipality_column(primary_key=True)
    account_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[str] = mapped_column(String(16), primary_key=True)
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class PermissionGrant(TenantScoped, Base):
    """A permission a municipality gives a role beyond the plugin's defaults (manifest ``[permissions]``)."""

    __tablename__ = "permission_grants"

    municipality_id: Mapped[int] = municipality_column(primary_key=True)
    role: Mapped[str] = mapped_column(String(16), primary_key=True)
    permission: Mapped[str] = mapped_column(String(80), primary_key=True)


class AuthSession(TenantScoped, Base):
    """A browser session: server-side, bound to the municipality where the person logged in.

    The cookie carries a random token; only its SHA-256 is stored.
    """

    __tablename__ = "auth_sessions"

    municipality_id: Mapped[int] = municipality_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (UniqueConstraint("token_hash", name="uq_auth_sessions_token_hash"),)


class ApiKey(TenantScoped, Base):
    """A key for a vendor or another system: one municipality, some scopes, an expiry; stored hashed."""

    __tablename__ = "api_keys"

    municipality_id: Mapped[int] = municipality_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    prefix: Mapped[str] = mapped_column(String(16))
    secret_hash: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(100))
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (UniqueConstraint("prefix", name="uq_api_keys_prefix"),)


class OidcLoginState(TenantScoped, Base):
    """An OpenID Connect login under way: what the callback needs to finish it, for ten minutes, once.

    Only the SHA-256 of ``state`` is stored (the value itself travels through the browser and the provider); a
    callback finds its row only in the municipality where the login began.
    """

    __tablename__ = "oidc_login_states"

    municipality_id: Mapped[int] = municipality_column(primary_key=True)
    state_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(64))
    code_verifier: Mapped[str] = mapped_column(String(128))
    redirect_to: Mapped[str] = mapped_column(String(2048))
    """Where to send the browser after the login: a path inside the municipality."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
