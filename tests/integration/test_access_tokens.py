"""Access tokens: issued at ``POST /auth/token`` for an API key or a signed-in person, used as ``Bearer``, good in
one municipality for ten minutes, verifiable with the JWK Set, surviving a key rotation. On SQLite and PostgreSQL.

Uses the throwaway plugin ``vault`` of ``test_apikeys`` (scopes ``vault:read`` for staff, ``vault:write`` for
admins), enabled in miki and sanuki.
"""

from __future__ import annotations

import base64
import secrets
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import msgspec
import pytest
from sqlalchemy import update

from core.app import create_app
from core.db.base import utcnow
from core.identity import keystore
from core.identity.access import issue_token
from core.identity.apikeys import create_api_key, revoke_api_key
from core.identity.authn import CSRF_HEADER, SESSION_COOKIE, sha256_hex
from core.identity.keys import KeyRing, serialise
from core.identity.keystore import signing_keys
from core.identity.models import Account, AuthSession, RoleGrant
from core.identity.principal import Principal
from core.identity.tokens import issue_access_token, validate_access_token
from core.platform import Platform
from tests.asgi import lifespan_client
from tests.integration.test_apikeys import MIKI, SANUKI, problem, vault_platform

BEARER_CHALLENGE = 'Bearer error="invalid_token"'


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


async def new_key(platform: Platform, *scopes: str, slug: str = "miki") -> tuple[Any, str]:
    return await create_api_key(
        platform,
        platform.municipality(slug),
        name="Vendor X sync",
        scopes=scopes or ("vault:read",),
        expires_at=utcnow() + timedelta(days=30),
    )


async def token_for(
    http: httpx.AsyncClient, key: str, host: dict[str, str] = MIKI, **kw: Any
) -> dict[str, Any]:
    response = await http.post("/auth/token", headers={**host, "x-api-key": key}, **kw)
    assert response.status_code == 200, response.text
    return response.json()


def bearer(token: str, host: dict[str, str] = MIKI) -> dict[str, str]:
    return {**host, "authorization": f"Bearer {token}"}


def header_of(token: str) -> dict[str, Any]:
    head = token.split(".")[0]
    return msgspec.json.decode(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))


async def sign_in(
    platform: Platform, slug: str, *roles: str, operator: bool = False
) -> tuple[uuid.UUID, dict[str, str]]:
    """A person holding ``roles`` in ``slug``, with a browser session there: their id, and the headers a browser
    sends on a state-changing request (the session cookie and its CSRF token)."""
    municipality = platform.municipality(slug)
    account_id, cookie, csrf = uuid.uuid4(), secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    async with platform.sessions.platform() as session:
        session.add(Account(id=account_id, display_name="三木 花子", is_operator=operator))
    async with platform.sessions.tenant(municipality.id) as session:
        session.add_all([RoleGrant(account_id=account_id, role=role) for role in roles])
        session.add(
            AuthSession(
                token_hash=sha256_hex(cookie),
                account_id=account_id,
                csrf_token=csrf,
                expires_at=utcnow() + timedelta(hours=1),
            )
        )
    return account_id, {"cookie": f"{SESSION_COOKIE}={cookie}", CSRF_HEADER: csrf}


# --- tokens for API keys --------------------------------------------------------------------------------------


async def test_a_key_gets_a_token_that_works_as_bearer(vault: Platform, http: httpx.AsyncClient) -> None:
    _, key = await new_key(vault, "vault:read", "vault:write")
    response = await http.post("/auth/token", headers={**MIKI, "x-api-key": key})
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "scope"}
    assert body["token_type"] == "Bearer" and body["expires_in"] == 600
    assert body["scope"] == "vault:read vault:write"

    token = body["access_token"]
    got = await http.get("/vault/items", headers=bearer(token))
    assert got.status_code == 200, got.text
    assert got.json() == {"kind": "api_key", "scopes": ["vault:read", "vault:write"]}
    assert (await http.post("/vault/items", headers=bearer(token))).status_code == 201
    problem(await http.get("/vault/audit", headers=bearer(token)), 403)  # no scope carries vault.audit

    body = problem(await http.get("/vault/items", headers=bearer(token, SANUKI)), 403)
    assert "another municipality" in body["detail"]
    # A token does not buy another token: it would outlive the key's revocation checks' purpose.
    problem(await http.post("/auth/token", headers={**bearer(token), "x-api-key": key}), 403)


async def test_a_token_may_carry_fewer_scopes_than_its_key(vault: Platform, http: httpx.AsyncClient) -> None:
    _, reader = await new_key(vault, "vault:read")
    _, both = await new_key(vault, "vault:read", "vault:write")

    narrow = await token_for(http, both, json={"scope": "vault:read"})
    assert narrow["scope"] == "vault:read"
    assert (await http.get("/vault/items", headers=bearer(narrow["access_token"]))).status_code == 200
    problem(await http.post("/vault/items", headers=bearer(narrow["access_token"])), 403)

    response = await http.post(
        "/auth/token",
        headers={**MIKI, "x-api-key": both, "content-type": "application/x-www-form-urlencoded"},
        content=b"scope=vault%3Awrite",
    )
    assert response.status_code == 200 and response.json()["scope"] == "vault:write", response.text

    body = problem(
        await http.post("/auth/token", headers={**MIKI, "x-api-key": reader}, json={"scope": "vault:write"}),
        403,
    )
    assert "does not hold the scope 'vault:write'" in body["detail"]
    body = problem(
        await http.post("/auth/token", headers={**MIKI, "x-api-key": reader}, json={"scope": "vault:raed"}),
        422,
    )
    assert "unknown scope 'vault:raed'" in body["detail"]
    problem(await http.post("/auth/token", headers={**MIKI, "x-api-key": reader}, content=b"{not json"), 422)
    problem(await http.post("/auth/token", headers={**SANUKI, "x-api-key": reader}), 403)
    problem(await http.post("/auth/token", headers=MIKI), 401)


async def test_a_revoked_keys_tokens_stop_working_at_once(vault: Platform, http: httpx.AsyncClient) -> None:
    info, key = await new_key(vault)
    token = (await token_for(http, key))["access_token"]
    assert (await http.get("/vault/items", headers=bearer(token))).status_code == 200

    await revoke_api_key(vault, vault.municipality("miki"), info.id)
    response = await http.get("/vault/items", headers=bearer(token))
    body = problem(response, 401)
    assert "revoked" in body["detail"]
    assert response.headers["www-authenticate"] == BEARER_CHALLENGE
    problem(await http.post("/auth/token", headers={**MIKI, "x-api-key": key}), 401)


async def test_expired_forged_and_malformed_tokens_get_401(vault: Platform, http: httpx.AsyncClient) -> None:
    miki = vault.municipality("miki")
    # The ring has existed for a day, so a token can be issued as if twenty minutes ago.
    yesterday = utcnow() - timedelta(days=1)
    keys = signing_keys(vault)
    assert await keys.store.save(serialise(KeyRing.create(yesterday), keys.secret), replaces=None)
    info, _ = await new_key(vault)
    caller = Principal(
        kind="api_key", api_key_id=info.id, municipality_id=miki.id, scopes=frozenset({"vault:read"})
    )
    old = await issue_token(vault, miki, caller, now=utcnow() - timedelta(minutes=20))
    fresh = await issue_token(vault, miki, caller)
    assert (await http.get("/vault/items", headers=bearer(fresh.access_token))).status_code == 200

    response = await http.get("/vault/items", headers=bearer(old.access_token))
    assert "expired" in problem(response, 401)["detail"]
    assert response.headers["www-authenticate"] == BEARER_CHALLENGE

    head, payload, signature = fresh.access_token.split(".")
    claims = msgspec.json.decode(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    widened = base64.urlsafe_b64encode(
        msgspec.json.encode({**claims, "scopes": ["vault:read", "vault:write"]})
    )
    forged = f"{head}.{widened.rstrip(b'=').decode()}.{signature}"
    foreign_ring = KeyRing.create(yesterday)  # a key of nobody we know: an unknown kid
    foreign = issue_access_token(
        foreign_ring,
        subject=str(info.id),
        municipality_id=miki.id,
        scopes=["vault:read"],
        audience=vault.settings.base_url,
        issuer=vault.settings.base_url,
        now=utcnow(),
        token_type="api_key",
    )
    for token in (forged, foreign, "abc", f"{head}.{payload}", "a.b.c"):
        response = await http.get("/vault/items", headers=bearer(token))
        problem(response, 401)
        assert response.headers["www-authenticate"] == BEARER_CHALLENGE
    problem(await http.get("/vault/items", headers={**MIKI, "authorization": "Basic dXNlcjpwdw=="}), 401)


async def test_a_token_for_another_deployment_gets_401(
    database_url: str, vault: Platform, http: httpx.AsyncClient
) -> None:
    other = await vault_platform(database_url, public_url="https://other.example.jp")
    try:
        info, _ = await new_key(vault)
        miki = other.municipality("miki")
        caller = Principal(
            kind="api_key", api_key_id=info.id, municipality_id=miki.id, scopes=frozenset({"vault:read"})
        )
        token = (await issue_token(other, miki, caller)).access_token  # same keys, other issuer and audience
    finally:
        await other.close()
    assert "another issuer" in problem(await http.get("/vault/items", headers=bearer(token)), 401)["detail"]


# --- tokens for people ----------------------------------------------------------------------------------------


async def test_a_signed_in_person_gets_a_token_with_the_scopes_their_roles_hold(
    vault: Platform, http: httpx.AsyncClient
) -> None:
    account_id, browser = await sign_in(vault, "miki", "staff")
    response = await http.post(
        "/auth/token", headers={**MIKI, **browser}, json={"scope": "vault:read vault:write"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["scope"] == "vault:read"  # staff hold vault.read only: vault:write is left out
    token = body["access_token"]
    got = await http.get("/vault/items", headers=bearer(token))
    assert got.status_code == 200 and got.json() == {"kind": "token", "scopes": ["vault:read"]}
    problem(await http.post("/vault/items", headers=bearer(token)), 403)
    problem(await http.get("/vault/items", headers=bearer(token, SANUKI)), 403)

    # Roles are read at every use: a person who lost the role loses what the token did with it.
    async with vault.sessions.tenant(vault.municipality("miki").id) as session:
        grant = await session.get(RoleGrant, (vault.municipality("miki").id, account_id, "staff"))
        await session.delete(grant)
    problem(await http.get("/vault/items", headers=bearer(token)), 403)
    async with vault.sessions.platform() as session:
        await session.execute(update(Account).where(Account.id == account_id).values(disabled_at=utcnow()))
    problem(await http.get("/vault/items", headers=bearer(token)), 401)


async def test_who_gets_which_account_token(vault: Platform, http: httpx.AsyncClient) -> None:
    async def scopes(browser: dict[str, str], **kw: Any) -> set[str]:
        response = await http.post("/auth/token", headers={**MIKI, **browser}, **kw)
        assert response.status_code == 200, response.text
        return {s for s in response.json()["scope"].split() if s.startswith("vault:")}

    _, admin = await sign_in(vault, "miki", "admin")
    assert await scopes(admin) == {"vault:read", "vault:write"}  # no scope asked for: all they hold
    _, operator = await sign_in(vault, "miki", operator=True)  # no role, but the operator flag
    assert await scopes(operator, json={"scope": "vault:write"}) == {"vault:write"}

    _, resident = await sign_in(vault, "miki", "resident")
    vault_scopes = {"scope": "vault:read vault:write"}
    body = problem(await http.post("/auth/token", headers={**MIKI, **resident}, json=vault_scopes), 403)
    assert "no permission you hold in miki carries the scopes vault:read, vault:write" in body["detail"]
    _, staff = await sign_in(vault, "miki", "staff")
    problem(await http.post("/auth/token", headers={**MIKI, "cookie": staff["cookie"]}), 403)  # no CSRF token
    form = await http.post(  # an HTML form sends the CSRF token as a field
        "/auth/token",
        headers={**MIKI, "cookie": staff["cookie"], "content-type": "application/x-www-form-urlencoded"},
        content=f"scope=vault%3Aread&csrf_token={staff[CSRF_HEADER]}".encode(),
    )
    assert form.status_code == 200 and form.json()["scope"] == "vault:read", form.text
    problem(await http.post("/auth/token", headers={**SANUKI, **staff}), 403)  # a miki session at sanuki


# --- the JWK Set and rotation ---------------------------------------------------------------------------------


async def test_the_jwks_publishes_the_signing_key_without_private_parts(
    vault: Platform, http: httpx.AsyncClient
) -> None:
    _, key = await new_key(vault)
    token = (await token_for(http, key))["access_token"]
    for headers in ({}, MIKI):  # a platform path: the same on every host
        response = await http.get("/.well-known/jwks.json", headers=headers)
        assert response.status_code == 200, response.text
        assert response.headers["cache-control"] == "public, max-age=300"
        jwks = response.json()
        assert [set(k) for k in jwks["keys"]] == [{"kty", "crv", "x", "y", "kid", "use", "alg"}]
        assert jwks["keys"][0]["kid"] == header_of(token)["kid"]
        assert all(k["kty"] == "EC" and k["alg"] == "ES256" and "d" not in k for k in jwks["keys"])
    # Anyone holding only the JWK Set can verify the token.
    claims = validate_access_token(
        token,
        jwks,
        issuer=vault.settings.base_url,
        audience=vault.settings.base_url,
        municipality_id=vault.municipality("miki").id,
        now=utcnow(),
    )
    assert claims.typ == "api_key" and claims.scopes == ("vault:read",)


async def test_an_unknown_kid_reloads_the_ring_at_most_once_per_interval(
    database_url: str, vault: Platform, http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, key = await new_key(vault)
    await token_for(http, key)  # the app now has its copy of the ring
    # Another process rotates with no pre-publication and signs with the new key at once.
    other = await vault_platform(database_url)
    try:
        ring = await signing_keys(other).rotate(prepublish=timedelta(0))
        miki = other.municipality("miki")
        info, _ = await new_key(other)
        caller = Principal(
            kind="api_key", api_key_id=info.id, municipality_id=miki.id, scopes=frozenset({"vault:read"})
        )
        token = (await issue_token(other, miki, caller)).access_token
    finally:
        await other.close()
    assert header_of(token)["kid"] == ring.keys[-1].kid
    assert (await http.get("/vault/items", headers=bearer(token))).status_code == 200

    loads = 0
    store = signing_keys(vault).store
    original = store.load

    async def counting() -> bytes | None:
        nonlocal loads
        loads += 1
        return await original()

    monkeypatch.setattr(store, "load", counting)
    monkeypatch.setattr(keystore, "UNKNOWN_KID_RELOAD_INTERVAL", 0.0)
    forged = base64.urlsafe_b64encode(b'{"alg":"ES256","kid":"nobody","typ":"at+jwt"}').rstrip(b"=").decode()
    problem(await http.get("/vault/items", headers=bearer(f"{forged}.e30.AAAA")), 401)
    assert loads == 1
    monkeypatch.setattr(keystore, "UNKNOWN_KID_RELOAD_INTERVAL", 60.0)
    for _ in range(3):
        problem(await http.get("/vault/items", headers=bearer(f"{forged}.e30.AAAA")), 401)
    assert loads == 1  # unknown kids do not turn into a query each


async def test_the_stored_ring_changes_only_if_it_is_what_was_read(vault: Platform) -> None:
    """Compare-and-swap: of two processes rotating at once, the second fails rather than drop the first's key."""
    store = keystore.DatabaseKeyRingStore(vault.sessions)
    assert await store.load() is None
    assert await store.save(b"first", replaces=None)
    assert not await store.save(b"second", replaces=None)  # another process stored a ring meanwhile
    assert not await store.save(b"third", replaces=b"stale")
    assert await store.load() == b"first"
    assert await store.save(b"fourth", replaces=b"first")
    assert await store.load() == b"fourth"
