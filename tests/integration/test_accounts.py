"""Account and role services on SQLite and PostgreSQL: one account per person, roles and grants per municipality.

What must hold: an email is one account whatever its case, even when two creations race; a bad residence or a
taken email stores nothing; a town's listing names only the people holding a role there; roles and permission
grants land in their municipality only; a permission grant reaches every process through the platform revision.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from core.audit import AuditEvent
from core.db.base import utcnow
from core.exceptions import InvalidInput, NotFound
from core.identity import accounts
from core.identity.authn import roles_of, sha256_hex
from core.identity.guards import is_allowed
from core.identity.models import Account, AuthSession, PermissionGrant, RoleGrant
from core.identity.people import Person, parse_person
from core.identity.principal import Principal
from core.platform import Platform, create_platform
from core.tenancy import service
from core.tenancy.manifest import load_manifests
from core.tenancy.models import PlatformRevisionRow
from tests.conftest import MANIFESTS
from tests.conftest import test_settings as settings_for


def person(email: str = "taro@example.jp", **changes: Any) -> Person:
    data: dict[str, Any] = {
        "display_name": "三木 太郎",
        "family_name": "三木",
        "given_name": "太郎",
        "family_name_kana": "みき",
        "given_name_kana": "ﾀﾛｳ",
        "email": email,
        "phone": "087-891-3300",
        "address": {
            "postal_code": "〒７６１－０６９２",
            "prefecture": "香川県",
            "city": "木田郡三木町",
            "town": "氷上",
            "street": "310",
        },
        "residence_municipality": "miki",
    }
    data.update(changes)
    return parse_person(data)


async def count_accounts(platform: Platform) -> int:
    async with platform.sessions.platform() as session:
        return await session.scalar(select(func.count()).select_from(Account)) or 0


async def audit_trail(platform: Platform, slug: str, prefix: str = "core.role_") -> list[tuple[Any, ...]]:
    """The municipality's audit events of one kind, oldest first, as (actor, action, target, id, payload)."""
    async with platform.sessions.tenant(platform.municipality(slug).id) as session:
        events = await session.scalars(
            select(AuditEvent).where(AuditEvent.action.startswith(prefix)).order_by(AuditEvent.recorded_at)
        )
        return [(e.actor, e.action, e.target_type, e.target_id, e.payload) for e in events]


async def revision(platform: Platform) -> int:
    async with platform.sessions.platform() as session:
        return await session.scalar(select(PlatformRevisionRow.revision)) or 0


# --- accounts -------------------------------------------------------------------------------------------------


async def test_an_account_keeps_the_checked_person(platform: Platform) -> None:
    created = await accounts.create_account(platform, person("Taro@Example.JP"))

    stored = await accounts.get_account(platform, created.id)
    assert stored.email == "taro@example.jp"  # one address, one account: stored in lower case
    assert (stored.family_name_kana, stored.given_name_kana) == ("ミキ", "タロウ")
    assert (stored.postal_code, stored.prefecture, stored.city, stored.town, stored.street) == (
        "761-0692",
        "香川県",
        "木田郡三木町",
        "氷上",
        "310",
    )
    assert stored.phone == "0878913300"
    assert stored.residence_municipality_id == platform.municipality("miki").id
    assert stored.is_operator is False and stored.disabled_at is None
    operator = await accounts.create_account(platform, person("ope@example.jp"), operator=True)
    assert (await accounts.get_account(platform, operator.id)).is_operator is True


@pytest.mark.parametrize(
    "again", ["taro@example.jp", "TARO@example.jp", "Taro@EXAMPLE.jp", "ｔａｒｏ＠example.jp"]
)
async def test_an_email_is_one_account_whatever_its_case(platform: Platform, again: str) -> None:
    await accounts.create_account(platform, person("taro@example.jp"))

    with pytest.raises(InvalidInput) as raised:
        await accounts.create_account(platform, person(again, display_name="別人"))

    assert raised.value.extra["errors"] == [{"field": "email", "rule": "is already used by another account"}]
    assert await count_accounts(platform) == 1


async def test_racing_creations_of_one_address_make_one_account(platform: Platform) -> None:
    spellings = ["hanako@example.jp", "HANAKO@example.jp", "Hanako@example.jp", "hanakO@example.jp"]

    results = await asyncio.gather(
        *(accounts.create_account(platform, person(email)) for email in spellings), return_exceptions=True
    )

    created = [r for r in results if isinstance(r, Account)]
    refused = [r for r in results if isinstance(r, InvalidInput)]
    assert (len(created), len(refused)) == (1, len(spellings) - 1), results
    assert await count_accounts(platform) == 1


async def test_every_problem_is_named_at_once_and_nothing_is_stored(platform: Platform) -> None:
    await accounts.create_account(platform, person("taro@example.jp"))

    with pytest.raises(InvalidInput) as raised:
        await accounts.create_account(platform, person("TARO@example.jp", residence_municipality="atlantis"))

    assert {e["field"] for e in raised.value.extra["errors"]} == {"email", "residence_municipality"}
    assert "residence_municipality: must be a member municipality, got 'atlantis'" in raised.value.detail
    assert await count_accounts(platform) == 1


async def test_find_by_id_or_by_email_in_any_case(platform: Platform) -> None:
    created = await accounts.create_account(platform, person("Taro@example.jp"))

    for reference in (str(created.id), "taro@example.jp", " TARO@EXAMPLE.JP ", "Taro@example.jp"):
        assert (await accounts.find_account(platform, reference)).id == created.id
    with pytest.raises(NotFound) as missing:
        await accounts.find_account(platform, "jiro@example.jp")
    assert "jiro" not in missing.value.detail  # an email someone typed is not repeated into logs
    with pytest.raises(NotFound):
        await accounts.find_account(platform, str(uuid.uuid4()))
    with pytest.raises(InvalidInput):
        await accounts.find_account(platform, "not an email")


async def test_update_profile_replaces_the_person_and_keeps_the_email_unique(platform: Platform) -> None:
    taro = await accounts.create_account(platform, person("taro@example.jp"))
    await accounts.create_account(platform, person("hanako@example.jp"))

    updated = await accounts.update_profile(
        platform,
        taro.id,
        person("TARO@example.jp", display_name="三木 太郎 (本人)", residence_municipality=None),
    )
    assert (updated.email, updated.display_name, updated.residence_municipality_id) == (
        "taro@example.jp",
        "三木 太郎 (本人)",
        None,
    )
    with pytest.raises(InvalidInput, match="email: is already used"):
        await accounts.update_profile(platform, taro.id, person("Hanako@example.jp"))
    assert (await accounts.get_account(platform, taro.id)).email == "taro@example.jp"
    with pytest.raises(NotFound):
        await accounts.update_profile(platform, uuid.uuid4(), person("jiro@example.jp"))


async def test_disabling_an_account_ends_its_sessions_everywhere(platform: Platform) -> None:
    taro = await accounts.create_account(platform, person())
    far = utcnow() + timedelta(hours=1)
    for slug in ("miki", "takamatsu"):
        async with platform.sessions.tenant(platform.municipality(slug).id) as session:
            session.add(
                AuthSession(token_hash=sha256_hex(slug), account_id=taro.id, csrf_token="c", expires_at=far)
            )

    disabled = await accounts.disable_account(platform, taro.id)
    again = await accounts.disable_account(platform, taro.id)

    assert disabled.disabled_at is not None and again.disabled_at == disabled.disabled_at
    async with platform.sessions.platform() as session:
        open_sessions = await session.scalar(
            select(func.count()).select_from(AuthSession).where(AuthSession.revoked_at.is_(None))
        )
    assert open_sessions == 0


# --- roles ----------------------------------------------------------------------------------------------------


async def test_roles_are_held_per_municipality_and_granting_is_idempotent(platform: Platform) -> None:
    taro = await accounts.create_account(platform, person())
    miki, takamatsu = platform.municipality("miki"), platform.municipality("takamatsu")

    assert await accounts.grant_role(platform, miki, taro.id, "staff") is True
    assert await accounts.grant_role(platform, miki, taro.id, "staff") is False
    assert await accounts.grant_role(platform, takamatsu, taro.id, "resident") is True

    assert await roles_of(platform, miki.id, taro.id) == {"staff"}
    assert await roles_of(platform, takamatsu.id, taro.id) == {"resident"}
    async with platform.sessions.platform() as session:
        rows = {(r.municipality_id, r.role) for r in await session.scalars(select(RoleGrant))}
    assert rows == {(miki.id, "staff"), (takamatsu.id, "resident")}

    assert await accounts.revoke_role(platform, miki, taro.id, "staff") is True
    assert await accounts.revoke_role(platform, miki, taro.id, "staff") is False
    assert await roles_of(platform, miki.id, taro.id) == frozenset()
    assert await roles_of(platform, takamatsu.id, taro.id) == {"resident"}  # revoking in miki left takamatsu
    assert await audit_trail(platform, "miki") == [
        ("cli", "core.role_granted", "account", str(taro.id), {"role": "staff"}),
        ("cli", "core.role_revoked", "account", str(taro.id), {"role": "staff"}),
    ]
    assert await audit_trail(platform, "takamatsu") == [
        ("cli", "core.role_granted", "account", str(taro.id), {"role": "resident"})
    ]


@pytest.mark.parametrize("role", ["operator", "Staff", "", "superuser"])
async def test_a_role_must_be_one_of_the_roles(platform: Platform, role: str) -> None:
    taro = await accounts.create_account(platform, person())
    miki = platform.municipality("miki")

    for change in (accounts.grant_role, accounts.revoke_role):
        with pytest.raises(InvalidInput, match="role: must be one of resident, staff, admin"):
            await change(platform, miki, taro.id, role)
    assert await roles_of(platform, miki.id, taro.id) == frozenset()


async def test_granting_to_no_account_is_not_found(platform: Platform) -> None:
    with pytest.raises(NotFound):
        await accounts.grant_role(platform, platform.municipality("miki"), uuid.uuid4(), "staff")


async def test_a_towns_listing_names_only_the_people_holding_a_role_there(platform: Platform) -> None:
    miki, takamatsu = platform.municipality("miki"), platform.municipality("takamatsu")
    taro = await accounts.create_account(platform, person("taro@example.jp"))
    hanako = await accounts.create_account(platform, person("hanako@example.jp"))
    nobody = await accounts.create_account(platform, person("nobody@example.jp"))
    await accounts.grant_role(platform, miki, taro.id, "staff")
    await accounts.grant_role(platform, takamatsu, hanako.id, "admin")
    await accounts.grant_role(platform, takamatsu, taro.id, "resident")

    in_miki = await accounts.list_accounts(platform, miki)
    in_takamatsu = await accounts.list_accounts(platform, takamatsu)
    everyone = await accounts.list_accounts(platform)

    assert [a.id for a in in_miki] == [taro.id]
    assert [a.id for a in in_takamatsu] == [hanako.id, taro.id]  # ordered by email
    assert {a.id for a in everyone} == {taro.id, hanako.id, nobody.id}
    assert await accounts.list_accounts(platform, platform.municipality("naoshima")) == []
    # Roles read for one town say nothing about another.
    assert await accounts.roles_in(platform, [taro.id, hanako.id], miki) == {taro.id: {"miki": ["staff"]}}
    assert await accounts.roles_in(platform, [taro.id]) == {
        taro.id: {"miki": ["staff"], "takamatsu": ["resident"]}
    }


# --- what roles hold ------------------------------------------------------------------------------------------


def staff_principal(platform: Platform, slug: str, *roles: str) -> Principal:
    return Principal(
        kind="session",
        account_id=uuid.uuid4(),
        municipality_id=platform.municipality(slug).id,
        roles=frozenset(roles),
    )


async def test_a_permission_grant_reaches_another_process_through_the_revision(
    platform: Platform, database_url: str
) -> None:
    other = create_platform(settings_for(database_url))  # another process: its own snapshot
    try:
        await other.refresh(force=True)
        miki, naoshima = platform.municipality("miki"), platform.municipality("naoshima")
        resident = staff_principal(other, "miki", "resident")
        assert not is_allowed(other, resident, other.municipality("miki"), "notices.read_all")
        before = await revision(platform)

        assert await accounts.grant_permission(platform, miki, "resident", "notices.read_all") is True
        assert await accounts.grant_permission(platform, miki, "resident", "notices.read_all") is False

        assert await revision(platform) == before + 1
        assert await other.refresh() is True
        assert is_allowed(other, resident, other.municipality("miki"), "notices.read_all")
        elsewhere = staff_principal(other, "naoshima", "resident")
        assert not is_allowed(other, elsewhere, other.municipality("naoshima"), "notices.read_all")
        holders = {h.permission: h for h in await accounts.permission_holders(platform, miki)}
        assert holders["notices.read_all"].roles == ["resident", "staff", "admin"]
        assert holders["notices.read_all"].granted_roles == ["resident"]
        assert holders["notices.post"].roles == ["staff", "admin"]
        assert {h.permission: h.roles for h in await accounts.permission_holders(platform, naoshima)}[
            "notices.read_all"
        ] == ["staff", "admin"]

        assert await accounts.revoke_permission(platform, miki, "resident", "notices.read_all") is True
        assert await accounts.revoke_permission(platform, miki, "resident", "notices.read_all") is False
        assert await revision(platform) == before + 2
        await other.refresh()
        assert not is_allowed(other, resident, other.municipality("miki"), "notices.read_all")
        trail = await audit_trail(platform, "miki", "core.permission_")
        assert trail == [
            ("cli", "core.permission_granted", "permission", "notices.read_all", {"role": "resident"}),
            ("cli", "core.permission_revoked", "permission", "notices.read_all", {"role": "resident"}),
        ]
    finally:
        await other.close()


async def test_permission_grants_are_the_manifests_permissions(platform: Platform) -> None:
    miki = platform.municipality("miki")
    await accounts.grant_permission(platform, miki, "resident", "opinion_box.read")

    exported = await service.export_manifest(platform, "miki")
    assert exported.permissions == {"resident": ("opinion_box.read",)}
    # Applying the manifest as written (without the grant) takes it back: the manifest is the declared state.
    await service.apply_manifests(platform, load_manifests(MANIFESTS), [str(p) for p in MANIFESTS])
    async with platform.sessions.tenant(miki.id) as session:
        assert list(await session.scalars(select(PermissionGrant))) == []


@pytest.mark.parametrize(
    ("role", "permission", "message"),
    [
        ("resident", "notices.nope", "no installed plugin declares 'notices.nope'"),
        ("boss", "notices.post", "role: must be one of resident, staff, admin"),
        ("resident", "", "no installed plugin declares ''"),
    ],
)
async def test_unknown_roles_and_permissions_change_nothing(
    platform: Platform, role: str, permission: str, message: str
) -> None:
    miki = platform.municipality("miki")
    before = await revision(platform)
    for change in (accounts.grant_permission, accounts.revoke_permission):
        with pytest.raises(InvalidInput, match=message):
            await change(platform, miki, role, permission)
    assert await revision(platform) == before


async def test_a_default_cannot_be_revoked_per_municipality(platform: Platform) -> None:
    miki = platform.municipality("miki")
    before = await revision(platform)

    assert await accounts.grant_permission(platform, miki, "staff", "notices.post") is False
    with pytest.raises(InvalidInput, match="staff holds notices.post by default"):
        await accounts.revoke_permission(platform, miki, "staff", "notices.post")

    assert await revision(platform) == before
    async with platform.sessions.tenant(miki.id) as session:
        assert list(await session.scalars(select(PermissionGrant))) == []
