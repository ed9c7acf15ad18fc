"""API keys: made with scopes the plugins declare, stored as a hash, good in one municipality for what their
scopes carry, refused (401) once revoked or expired. On SQLite and PostgreSQL.

The throwaway plugin ``vault`` declares ``vault.read`` (scope ``vault:read``, staff), ``vault.write`` (scope
``vault:write``, admin) and ``vault.audit`` (no scope: no key can use it), each guarding one route; it is enabled
in miki and sanuki, so a refusal at sanuki comes from the credential, not from a missing route.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import msgspec
import pytest
from litestar import Request, get, post
from sqlalchemy import text

from core import Plugin, PluginMeta, Title, hookimpl
from core.app import create_app
from core.db.base import utcnow
from core.exceptions import InvalidInput, NotFound
from core.identity import Permission, requires
from core.identity.apikeys import create_api_key, list_api_keys, revoke_api_key
from core.identity.authn import sha256_hex
from core.platform import Platform, create_platform
from core.tenancy import service
from core.tenancy.manifest import load_manifests
from tests import conftest
from tests.asgi import lifespan_client

PROBLEM = "application/problem+json"
MIKI = {"host": "miki.localhost"}
SANUKI = {"host": "sanuki.localhost"}
SECRET_KEY = "test-platform-secret-0123456789abcdefghijklmnop"
KEY_FORMAT = re.compile(r"tsu_(?P<prefix>[a-z2-7]{10})_(?P<secret>[A-Za-z0-9_-]{43})")


class Vault(Plugin):
    """Three guarded routes; each answers with the caller it saw."""

    meta = PluginMeta(name="vault", version="1.0", title=Title(ja="金庫", en="Vault"))

    @hookimpl
    def register_permissions(self) -> list[Permission]:
        return [
            Permission(
                name="vault.read", description="Read", default_roles=("staff", "admin"), scope="vault:read"
            ),
            Permission(
                name="vault.write", description="Write", default_roles=("admin",), scope="vault:write"
            ),
            Permission(name="vault.audit", description="Audit", default_roles=("admin",)),
        ]

    @hookimpl
    def register_routes(self) -> list[Any]:
        def caller(request: Request[Any, Any, Any]) -> dict[str, Any]:
            principal = request.scope["state"]["principal"]
            return {"kind": principal.kind, "scopes": sorted(principal.scopes or ())}

        @get("/items", guards=[requires("vault.read")], sync_to_thread=False)
        def read(request: Request[Any, Any, Any]) -> dict[str, Any]:
            return caller(request)

        @post("/items", guards=[requires("vault.write")], sync_to_thread=False)
        def write(request: Request[Any, Any, Any]) -> dict[str, Any]:
            return caller(request)

        @get("/audit", guards=[requires("vault.audit")], sync_to_thread=False)
        def audit(request: Request[Any, Any, Any]) -> dict[str, Any]:
            return caller(request)

        return [read, write, audit]


async def vault_platform(database_url: str, **settings: Any) -> Platform:
    """A platform with the real municipalities and ``vault`` enabled in miki and sanuki."""
    settings = {"secret_key": SECRET_KEY, **settings}
    platform = create_platform(
        conftest.replace_settings(conftest.test_settings(database_url), **settings), extra_plugins=[Vault()]
    )
    await platform.refresh(force=True)
    if not platform.snapshot.by_id:
        await service.apply_manifests(
            platform, load_manifests(conftest.MANIFESTS), [str(p) for p in conftest.MANIFESTS]
        )
        for slug in ("miki", "sanuki"):
            await service.set_plugin_enabled(platform, slug, "vault", True)
    return platform


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = msgspec.json.decode(response.content)
    assert body["status"] == status
    return body


def in_a_year() -> datetime:
    return utcnow() + timedelta(days=365)


@pytest.fixture
async def vault(database_url: str) -> AsyncIterator[Platform]:
    platform = await vault_platform(database_url)
    try:
        yield platform
    finally:
        await platform.close()


@pytest.fixture
async def http(vault: Platform) -> AsyncIterator[httpx.AsyncClient]:
    async with lifespan_client(create_app(platform=vault, run_jobs_in_process=False)) as client:
        yield client


async def new_key(platform: Platform, *scopes: str, slug: str = "miki", **kw: Any) -> tuple[Any, str]:
    kw.setdefault("expires_at", in_a_year())
    return await create_api_key(
        platform, platform.municipality(slug), name="Vendor X sync", scopes=scopes or ("vault:read",), **kw
    )


# --- the service ----------------------------------------------------------------------------------------------


async def test_a_key_is_shown_once_and_only_its_hash_is_stored(vault: Platform) -> None:
    info, key = await new_key(vault, "vault:write", "vault:read", "vault:read")
    parts = KEY_FORMAT.fullmatch(key)
    assert parts is not None, key
    assert info.prefix == parts["prefix"] and info.municipality == "miki"
    assert info.scopes == ("vault:read", "vault:write")  # deduplicated, sorted

    async with vault.sessions.platform() as session:
        rows = [dict(r._mapping) for r in await session.execute(text("SELECT * FROM api_keys"))]
    assert len(rows) == 1
    stored = " ".join(str(value) for value in rows[0].values())
    assert parts["secret"] not in stored and key not in stored
    assert rows[0]["secret_hash"] == sha256_hex(key)

    listed = await list_api_keys(vault, vault.municipality("miki"))
    assert [k.id for k in listed] == [info.id]
    assert parts["secret"] not in msgspec.json.encode(listed).decode()


@pytest.mark.parametrize(
    ("scopes", "fragment"),
    [
        (("vault:read", "vault:raed"), "unknown scope 'vault:raed' (valid scopes: "),
        (("vault.read",), "unknown scope 'vault.read' (valid scopes: "),
        ((), "give at least one scope (valid scopes: "),
    ],
)
async def test_only_declared_scopes_are_accepted(
    vault: Platform, scopes: tuple[str, ...], fragment: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        await create_api_key(
            vault, vault.municipality("miki"), name="x", scopes=scopes, expires_at=in_a_year()
        )
    assert fragment in caught.value.detail and "vault:read, vault:write" in caught.value.detail
    assert await list_api_keys(vault, vault.municipality("miki")) == []


@pytest.mark.parametrize(
    ("expires_in", "fragment"),
    [
        (timedelta(0), "must expire in the future"),
        (timedelta(days=-1), "must expire in the future"),
        (timedelta(days=732), "at most 731 days"),
    ],
)
async def test_a_key_expires_in_the_future_within_two_years(
    vault: Platform, expires_in: timedelta, fragment: str
) -> None:
    now = utcnow()
    with pytest.raises(InvalidInput, match=fragment):
        await new_key(vault, expires_at=now + expires_in, now=now)
    with pytest.raises(InvalidInput, match="must have a time zone"):
        await new_key(vault, expires_at=datetime(2030, 1, 1), now=now)
    assert await list_api_keys(vault, vault.municipality("miki")) == []


async def test_revoking_is_idempotent_and_stays_in_the_municipality(vault: Platform) -> None:
    miki, sanuki = vault.municipality("miki"), vault.municipality("sanuki")
    info, _ = await new_key(vault)
    with pytest.raises(NotFound):  # sanuki cannot see, let alone revoke, miki's key
        await revoke_api_key(vault, sanuki, info.id)
    assert await list_api_keys(vault, sanuki) == []

    revoked, changed = await revoke_api_key(vault, miki, info.prefix)
    assert changed and revoked.revoked_at is not None and revoked.status(utcnow()) == "revoked"
    again, changed = await revoke_api_key(vault, miki, str(info.id))
    assert not changed and again.revoked_at == revoked.revoked_at
    with pytest.raises(NotFound):
        await revoke_api_key(vault, miki, uuid.uuid4())


# --- over HTTP ------------------------------------------------------------------------------------------------


async def test_a_key_can_do_what_its_scopes_carry_in_its_municipality(
    vault: Platform, http: httpx.AsyncClient
) -> None:
    _, reader = await new_key(vault, "vault:read")
    _, writer = await new_key(vault, "vault:read", "vault:write")

    response = await http.get("/vault/items", headers={**MIKI, "x-api-key": reader})
    assert response.status_code == 200, response.text
    assert response.json() == {"kind": "api_key", "scopes": ["vault:read"]}
    assert (await http.post("/vault/items", headers={**MIKI, "x-api-key": writer})).status_code == 201
    assert (await http.get("/m/miki/vault/items", headers={"x-api-key": reader})).status_code == 200

    problem(await http.post("/vault/items", headers={**MIKI, "x-api-key": reader}), 403)  # no vault:write
    problem(await http.get("/vault/audit", headers={**MIKI, "x-api-key": writer}), 403)  # no scope carries it
    body = problem(await http.get("/vault/items", headers={**SANUKI, "x-api-key": reader}), 403)
    assert "another municipality" in body["detail"]
    problem(await http.get("/vault/items", headers=MIKI), 401)  # no credential at all


async def test_revoked_expired_unknown_and_malformed_keys_get_401(
    vault: Platform, http: httpx.AsyncClient
) -> None:
    revoked_info, revoked = await new_key(vault)
    await revoke_api_key(vault, vault.municipality("miki"), revoked_info.prefix)
    long_ago = utcnow() - timedelta(days=30)
    _, expired = await new_key(vault, now=long_ago, expires_at=long_ago + timedelta(days=1))
    _, good = await new_key(vault)
    parts = KEY_FORMAT.fullmatch(good)
    assert parts is not None
    wrong_secret = f"tsu_{parts['prefix']}_{'A' * 43}"
    unknown_prefix = f"tsu_aaaaaaaaaa_{parts['secret']}"

    cases = {
        revoked: "revoked",
        expired: "expired",
        wrong_secret: "unknown API key",
        unknown_prefix: "unknown API key",
        "not-a-key": "malformed",
        "tsu__x": "malformed",
    }
    for key, fragment in cases.items():
        body = problem(await http.get("/vault/items", headers={**MIKI, "x-api-key": key}), 401)
        assert fragment in body["detail"], (key, body)
    assert (await http.get("/vault/items", headers={**MIKI, "x-api-key": good})).status_code == 200


async def test_revoking_takes_effect_on_the_next_request_and_use_is_recorded(
    vault: Platform, http: httpx.AsyncClient
) -> None:
    miki = vault.municipality("miki")
    info, key = await new_key(vault)
    assert info.last_used_at is None
    before = utcnow()
    assert (await http.get("/vault/items", headers={**MIKI, "x-api-key": key})).status_code == 200
    [used] = await list_api_keys(vault, miki)
    assert used.last_used_at is not None and used.last_used_at >= before - timedelta(seconds=1)

    await revoke_api_key(vault, miki, info.id)
    body = problem(await http.get("/vault/items", headers={**MIKI, "x-api-key": key}), 401)
    assert "revoked" in body["detail"]
