"""Accounts and who holds what where: one account per person, roles per municipality, permissions per role.

No HTTP in here. Accounts are platform-wide (one person, every town) and are read and written in platform
sessions. What an account holds in a municipality (its roles) and what a role holds there beyond the plugins'
defaults (permission grants) is tenant data: it is read and written only in sessions bound to that municipality,
so a listing for one town cannot reach another town's people. Each change of roles or grants is recorded in
that municipality's audit log, in the same transaction, as done by ``actor`` (``cli`` by default).

Emails are unique without regard to case: ``Taro@example.jp`` and ``taro@example.jp`` are one address, because
people type them both ways and mail reaches the same box.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime

import msgspec
import structlog
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from core.audit import record as audit_record
from core.db.base import utcnow
from core.exceptions import InvalidInput, NotFound
from core.identity.models import Account, AuthSession, PasswordCredential, PermissionGrant, RoleGrant
from core.identity.people import Person, normalise_email
from core.identity.permissions import ROLES, Permission
from core.platform import Platform
from core.tenancy.registry import Municipality
from core.tenancy.service import bump_revision

log = structlog.get_logger(__name__)


class AccountInfo(msgspec.Struct, kw_only=True, frozen=True):
    """An account as the CLI shows it: the profile, and the roles held in each municipality (by slug)."""

    id: uuid.UUID
    email: str | None
    display_name: str
    family_name: str | None
    given_name: str | None
    family_name_kana: str | None
    given_name_kana: str | None
    phone: str | None
    postal_code: str | None
    prefecture: str | None
    city: str | None
    town: str | None
    street: str | None
    building: str | None
    residence: str | None
    """Slug of the municipality the person lives in, if it is a member."""
    locale: str
    is_operator: bool
    has_password: bool
    created_at: datetime
    disabled_at: datetime | None
    roles: dict[str, list[str]]
    """Municipality slug -> roles held there (only municipalities where the account holds one)."""


class PermissionHolders(msgspec.Struct, kw_only=True, frozen=True):
    """One declared permission and the roles that hold it in one municipality."""

    permission: str
    description: str
    scope: str | None
    default_roles: list[str]
    granted_roles: list[str]
    """Roles the municipality gives it beyond the defaults (manifest ``[permissions]``, ``tsunagu role grant``)."""
    roles: list[str]
    """Every role holding it there: defaults and grants."""


# --- accounts -------------------------------------------------------------------------------------------------


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise InvalidInput(f"role: must be one of {', '.join(ROLES)}, got {role!r}", field="role")


async def _lock_email(platform: Platform, session: AsyncSession, email: str) -> None:
    """Serialise writes of one address on PostgreSQL, where two transactions in flight could each miss the other
    (SQLite transactions begin IMMEDIATE: one writer at a time already)."""
    if platform.engine.dialect.name == "postgresql":
        await session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
            {"key": f"account-email:{email.lower()}"},
        )


async def _email_taken(session: AsyncSession, email: str, *, besides: uuid.UUID | None = None) -> bool:
    query = select(Account.id).where(func.lower(Account.email) == email.lower())
    if besides is not None:
        query = query.where(Account.id != besides)
    return (await session.scalar(query.limit(1))) is not None


def _profile_errors(platform: Platform, person: Person) -> list[dict[str, str]]:
    errors = []
    if (
        person.residence_municipality is not None
        and person.residence_municipality not in platform.snapshot.by_slug
    ):
        errors.append(
            {
                "field": "residence_municipality",
                "rule": f"must be a member municipality, got {person.residence_municipality!r}",
            }
        )
    return errors


def _raise(errors: list[dict[str, str]]) -> None:
    if errors:
        raise InvalidInput("; ".join(f"{e['field']}: {e['rule']}" for e in errors), errors=errors)


def _apply_profile(platform: Platform, account: Account, person: Person) -> None:
    address = person.address
    account.email = person.email
    account.display_name = person.display_name
    account.family_name = person.family_name
    account.given_name = person.given_name
    account.family_name_kana = person.family_name_kana
    account.given_name_kana = person.given_name_kana
    account.phone = person.phone
    account.postal_code = address.postal_code if address else None
    account.prefecture = address.prefecture if address else None
    account.city = address.city if address else None
    account.town = (address.town or None) if address else None
    account.street = address.street if address else None
    account.building = address.building if address else None
    residence = person.residence_municipality
    account.residence_municipality_id = platform.snapshot.by_slug[residence].id if residence else None
    account.locale = person.locale


_EMAIL_IN_USE = {"field": "email", "rule": "is already used by another account"}


async def create_account(platform: Platform, person: Person, *, operator: bool = False) -> Account:
    """Store a new account for a checked person (see :func:`core.identity.people.parse_person`).

    :raises InvalidInput: the email is already used (in any case), or the residence is no member municipality;
        every such problem at once (``errors``), nothing stored.
    """
    errors = _profile_errors(platform, person)
    try:
        async with platform.sessions.platform() as session:
            await _lock_email(platform, session, person.email)
            if await _email_taken(session, person.email):
                errors.append(_EMAIL_IN_USE)
            _raise(errors)
            account = Account(id=uuid.uuid4(), is_operator=operator)
            _apply_profile(platform, account, person)
            session.add(account)
            await session.flush()
    except IntegrityError as exc:  # the same address, in the same case, committed meanwhile
        raise InvalidInput("email: is already used by another account", errors=[_EMAIL_IN_USE]) from exc
    log.info("identity.account_created", account_id=str(account.id), operator=operator)
    return account


async def update_profile(platform: Platform, account_id: uuid.UUID, person: Person) -> Account:
    """Replace an account's profile with a checked person record (roles and flags are kept).

    :raises NotFound: no account has this id.
    :raises InvalidInput: as for :func:`create_account`.
    """
    errors = _profile_errors(platform, person)
    try:
        async with platform.sessions.platform() as session:
            account = await session.get(Account, account_id)
            if account is None:
                raise NotFound(f"no account has the id {account_id}")
            await _lock_email(platform, session, person.email)
            if await _email_taken(session, person.email, besides=account_id):
                errors.append(_EMAIL_IN_USE)
            _raise(errors)
            _apply_profile(platform, account, person)
            await session.flush()
    except IntegrityError as exc:
        raise InvalidInput("email: is already used by another account", errors=[_EMAIL_IN_USE]) from exc
    log.info("identity.profile_updated", account_id=str(account_id))
    return account


async def get_account(platform: Platform, account_id: uuid.UUID) -> Account:
    """:raises NotFound: no account has this id."""
    async with platform.sessions.platform() as session:
        account = await session.get(Account, account_id)
    if account is None:
        raise NotFound(f"no account has the id {account_id}")
    return account


async def find_account(platform: Platform, reference: str) -> Account:
    """The account an id or an email (any case) names.

    :raises InvalidInput: ``reference`` is neither a UUID nor an email address.
    :raises NotFound: no such account (the message does not repeat the email).
    """
    reference = reference.strip()
    try:
        account_id = uuid.UUID(reference)
    except ValueError:
        pass
    else:
        return await get_account(platform, account_id)
    try:
        email = normalise_email(reference)
    except ValueError:
        raise InvalidInput("expected an account id (a UUID) or an email address") from None
    async with platform.sessions.platform() as session:
        account = await session.scalar(select(Account).where(func.lower(Account.email) == email.lower()))
    if account is None:
        raise NotFound("no account has this email")
    return account


async def list_accounts(platform: Platform, municipality: Municipality | None = None) -> list[Account]:
    """Accounts ordered by email (in any case); with ``municipality``, only those holding a role there.

    The listing for one municipality is read in a session bound to it, so it can name nobody who holds
    nothing there.
    """
    if municipality is None:
        async with platform.sessions.platform() as session:
            return list(
                await session.scalars(select(Account).order_by(func.lower(Account.email), Account.id))
            )
    async with platform.sessions.tenant(municipality.id) as session:
        holders = select(RoleGrant.account_id).where(RoleGrant.municipality_id == municipality.id)
        return list(
            await session.scalars(
                select(Account).where(Account.id.in_(holders)).order_by(func.lower(Account.email), Account.id)
            )
        )


async def disable_account(platform: Platform, account_id: uuid.UUID) -> Account:
    """Stop an account from signing in anywhere; its browser sessions end at once. Idempotent.

    :raises NotFound: no account has this id.
    """
    now = utcnow()
    async with platform.sessions.platform() as session:
        account = await session.get(Account, account_id)
        if account is None:
            raise NotFound(f"no account has the id {account_id}")
        if account.disabled_at is None:
            account.disabled_at = now
        await session.execute(
            update(AuthSession)
            .where(AuthSession.account_id == account_id, AuthSession.revoked_at.is_(None))
            .values(revoked_at=now)
        )
    log.info("identity.account_disabled", account_id=str(account_id))
    return account


async def delete_account(platform: Platform, account_id: uuid.UUID) -> None:
    """Remove an account and everything that hangs on it (roles, sessions, password). Only for undoing a creation
    that could not be finished: an account that has been used is disabled instead (:func:`disable_account`)."""
    async with platform.sessions.platform() as session:
        await session.execute(delete(Account).where(Account.id == account_id))
    log.info("identity.account_deleted", account_id=str(account_id))


# --- roles ----------------------------------------------------------------------------------------------------


async def grant_role(
    platform: Platform, municipality: Municipality, account_id: uuid.UUID, role: str, *, actor: str = "cli"
) -> bool:
    """Give an account a role in one municipality. Returns whether it changed anything (idempotent).

    :raises InvalidInput: ``role`` is not one of :data:`~core.identity.permissions.ROLES`.
    :raises NotFound: no account has this id.
    """
    _check_role(role)
    await get_account(platform, account_id)
    async with platform.sessions.tenant(municipality.id) as session:
        if await session.get(RoleGrant, (municipality.id, account_id, role)) is not None:
            return False
        session.add(RoleGrant(account_id=account_id, role=role))
        _audit_role(session, actor, "core.role_granted", account_id, role)
    log.info("identity.role_granted", municipality=municipality.slug, account_id=str(account_id), role=role)
    return True


async def revoke_role(
    platform: Platform, municipality: Municipality, account_id: uuid.UUID, role: str, *, actor: str = "cli"
) -> bool:
    """Take a role away in one municipality. Returns whether it changed anything (idempotent).

    :raises InvalidInput: ``role`` is not one of :data:`~core.identity.permissions.ROLES`.
    :raises NotFound: no account has this id.
    """
    _check_role(role)
    await get_account(platform, account_id)
    async with platform.sessions.tenant(municipality.id) as session:
        result = await session.execute(
            delete(RoleGrant).where(RoleGrant.account_id == account_id, RoleGrant.role == role)
        )
        revoked = bool(result.rowcount)  # type: ignore[attr-defined]
        if revoked:
            _audit_role(session, actor, "core.role_revoked", account_id, role)
    if revoked:
        log.info(
            "identity.role_revoked", municipality=municipality.slug, account_id=str(account_id), role=role
        )
    return revoked


def _audit_role(session: AsyncSession, actor: str, action: str, account_id: uuid.UUID, role: str) -> None:
    audit_record(
        session,
        actor=actor,
        action=action,
        target_type="account",
        target_id=account_id,
        payload={"role": role},
    )


async def roles_in(
    platform: Platform, account_ids: Iterable[uuid.UUID], municipality: Municipality | None = None
) -> dict[uuid.UUID, dict[str, list[str]]]:
    """Account id -> municipality slug -> roles; with ``municipality``, read bound to it and about it only."""
    ids = list(account_ids)
    if not ids:
        return {}
    query = select(RoleGrant).where(RoleGrant.account_id.in_(ids)).order_by(RoleGrant.role)
    if municipality is None:
        async with platform.sessions.platform() as session:
            rows = list(await session.scalars(query))
    else:
        async with platform.sessions.tenant(municipality.id) as session:
            rows = list(await session.scalars(query))
    found: dict[uuid.UUID, dict[str, list[str]]] = {}
    by_id = platform.snapshot.by_id
    for row in rows:
        slug = by_id[row.municipality_id].slug if row.municipality_id in by_id else str(row.municipality_id)
        found.setdefault(row.account_id, {}).setdefault(slug, []).append(row.role)
    return found


async def describe_account(platform: Platform, account: Account) -> AccountInfo:
    """Everything :class:`AccountInfo` shows, roles in every municipality included (an operator's view)."""
    roles = (await roles_in(platform, [account.id])).get(account.id, {})
    async with platform.sessions.platform() as session:
        has_password = await session.get(PasswordCredential, account.id) is not None
    residence = platform.snapshot.by_id.get(account.residence_municipality_id or -1)
    return AccountInfo(
        id=account.id,
        email=account.email,
        display_name=account.display_name,
        family_name=account.family_name,
        given_name=account.given_name,
        family_name_kana=account.family_name_kana,
        given_name_kana=account.given_name_kana,
        phone=account.phone,
        postal_code=account.postal_code,
        prefecture=account.prefecture,
        city=account.city,
        town=account.town,
        street=account.street,
        building=account.building,
        residence=residence.slug if residence else None,
        locale=account.locale,
        is_operator=account.is_operator,
        has_password=has_password,
        created_at=account.created_at,
        disabled_at=account.disabled_at,
        roles=dict(sorted(roles.items())),
    )


# --- what roles hold ------------------------------------------------------------------------------------------


def _declared(platform: Platform, role: str, permission: str) -> Permission:
    _check_role(role)
    declared = platform.permissions.permissions.get(permission)
    if declared is None:
        raise InvalidInput(
            f"permission: no installed plugin declares {permission!r} (see: tsunagu role list)",
            field="permission",
        )
    return declared


async def _grants(session: AsyncSession, municipality: Municipality) -> set[tuple[str, str]]:
    rows = await session.scalars(
        select(PermissionGrant).where(PermissionGrant.municipality_id == municipality.id)
    )
    return {(r.role, r.permission) for r in rows}


def _audit_permission(session: AsyncSession, actor: str, action: str, role: str, permission: str) -> None:
    """As ``municipality apply`` records the same change (``core.tenancy.service``)."""
    audit_record(
        session,
        actor=actor,
        action=action,
        target_type="permission",
        target_id=permission,
        payload={"role": role},
    )


async def permission_holders(platform: Platform, municipality: Municipality) -> list[PermissionHolders]:
    """Every declared permission, by name, with the roles holding it in ``municipality``."""
    async with platform.sessions.tenant(municipality.id) as session:
        granted = await _grants(session, municipality)
    rows = []
    for name, declared in sorted(platform.permissions.permissions.items()):
        extra = [role for role in ROLES if (role, name) in granted]
        rows.append(
            PermissionHolders(
                permission=name,
                description=declared.description,
                scope=declared.scope,
                default_roles=[role for role in ROLES if role in declared.default_roles],
                granted_roles=extra,
                roles=[role for role in ROLES if role in declared.default_roles or role in extra],
            )
        )
    return rows


async def grant_permission(
    platform: Platform, municipality: Municipality, role: str, permission: str, *, actor: str = "cli"
) -> bool:
    """Give ``role`` a permission in one municipality beyond the defaults; every process sees it within a second.

    Returns whether it changed anything: ``False`` when the role already holds it, by default or by a grant.
    The manifest's ``[permissions]`` table sets the same grants, so the next ``municipality apply`` of a
    manifest that lacks this one takes it back (``municipality export`` writes it into the manifest).

    :raises InvalidInput: unknown role, or a permission no installed plugin declares.
    """
    declared = _declared(platform, role, permission)
    if role in declared.default_roles:
        return False
    async with platform.sessions.tenant(municipality.id) as session:
        if await session.get(PermissionGrant, (municipality.id, role, permission)) is not None:
            return False
        session.add(PermissionGrant(role=role, permission=permission))
        _audit_permission(session, actor, "core.permission_granted", role, permission)
        await bump_revision(session)
    await platform.refresh()
    log.info("identity.permission_granted", municipality=municipality.slug, role=role, permission=permission)
    return True


async def revoke_permission(
    platform: Platform, municipality: Municipality, role: str, permission: str, *, actor: str = "cli"
) -> bool:
    """Take back a permission the municipality gave ``role``. Returns whether it changed anything.

    :raises InvalidInput: unknown role or permission, or the role holds it by the plugin's default (a
        municipality can add to the defaults, not take them away).
    """
    declared = _declared(platform, role, permission)
    if role in declared.default_roles:
        raise InvalidInput(
            f"{role} holds {permission} by default (declared so by its plugin); a municipality can give roles "
            "more than the defaults, not less",
            field="permission",
        )
    async with platform.sessions.tenant(municipality.id) as session:
        result = await session.execute(
            delete(PermissionGrant).where(
                PermissionGrant.role == role, PermissionGrant.permission == permission
            )
        )
        revoked = bool(result.rowcount)  # type: ignore[attr-defined]
        if revoked:
            _audit_permission(session, actor, "core.permission_revoked", role, permission)
            await bump_revision(session)
    if revoked:
        await platform.refresh()
        log.info(
            "identity.permission_revoked", municipality=municipality.slug, role=role, permission=permission
        )
    return revoked
