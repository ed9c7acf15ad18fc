"""OpenID Connect login against a real provider (``oidc-provider``, tests/oidc.py), on SQLite and PostgreSQL.

The app runs in the test's event loop (``lifespan_client``); its calls to the provider (discovery, JWKS, token
endpoint) go over real loopback HTTP. The "browser" is ``Browser`` (cookies kept and sent explicitly) for the
app and ``OIDCProvider.login`` for the provider. miki and sanuki get an ``[auth.oidc]`` pointing at the provider
through their manifests; the other towns have none.
"""

# ruff: noqa: F811 - the oidc_provider fixture is imported, then named as a test parameter

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import msgspec
import pytest
from sqlalchemy import func, select

from core.app import create_app
from core.audit import AuditEvent
from core.identity.config import AuthConfig, OidcProviderConfig
from core.identity.models import Account, AuthSession, OidcIdentity, OidcLoginState, RoleGrant
from core.platform import Platform
from core.tenancy import service
from core.tenancy.manifest import load_manifests
from tests import conftest
from tests.asgi import lifespan_client
from tests.integration.test_login import Browser, make_account, problem
from tests.oidc import OIDCProvider, callback_params, oidc_provider  # noqa: F401 - the pytest fixture

pytestmark = pytest.mark.slow

BASE = "http://testserver"


def oidc_auth(provider: OIDCProvider, slug: str) -> AuthConfig:
    return AuthConfig(
        oidc=OidcProviderConfig(
            issuer=provider.issuer,
            client_id=provider.client_id,
            client_secret_env=f"TSUNAGU_OIDC_SECRET_{slug.upper()}",
            display_name="テストID",
        )
    )


@pytest.fixture
async def client(
    platform: Platform, oidc_provider: OIDCProvider, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[httpx.AsyncClient]:
    """The app, with miki and sanuki logging in through the test provider."""
    slugs = ("miki", "sanuki")
    for slug in slugs:
        monkeypatch.setenv(f"TSUNAGU_OIDC_SECRET_{slug.upper()}", oidc_provider.client_secret)
    manifests = [
        msgspec.structs.replace(m, auth=oidc_auth(oidc_provider, m.slug))
        for m in load_manifests(conftest.MANIFESTS)
        if m.slug in slugs
    ]
    await service.apply_manifests(platform, manifests, [f"{m.slug}.toml" for m in manifests])
    await platform.refresh()
    app = create_app(platform=platform, run_jobs_in_process=False)
    async with lifespan_client(app) as test_client:
        yield test_client


@pytest.fixture
def browser(client: httpx.AsyncClient) -> Browser:
    return Browser(client)


def local(url: str, prefix: str = "/m/miki") -> str:
    """``http://testserver/m/miki/x?y`` -> ``/x?y`` (what ``Browser.request`` takes)."""
    assert url.startswith(BASE + prefix + "/"), url
    return url[len(BASE + prefix) :]


async def begin(browser: Browser, next_path: str | None = None) -> str:
    """Start a login at the app; returns the provider's authorization URL."""
    response = await browser.request(
        "GET", "/auth/oidc/login", params={"next": next_path} if next_path else None
    )
    assert response.status_code == 302, response.text
    return response.headers["location"]


async def at_provider(provider: OIDCProvider, authorize_url: str, account: str = "alice", **kw: Any) -> str:
    """Log in at the provider (in a thread: it is a blocking client); returns the callback URL."""
    return await asyncio.to_thread(provider.login, authorize_url, account, **kw)


async def log_in(
    browser: Browser, provider: OIDCProvider, account: str = "alice", **kw: Any
) -> httpx.Response:
    callback = await at_provider(provider, await begin(browser), account, **kw)
    return await browser.request("GET", local(callback))


async def count(platform: Platform, model: Any, *where: Any) -> int:
    async with platform.sessions.platform() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def identity_account(platform: Platform, provider: OIDCProvider, subject: str) -> uuid.UUID | None:
    async with platform.sessions.platform() as session:
        identity = await session.get(OidcIdentity, (provider.issuer, subject))
        return None if identity is None else identity.account_id


async def assert_no_session(platform: Platform, browser: Browser, response: httpx.Response) -> None:
    assert "tsunagu_session" not in response.headers.get("set-cookie", "")
    assert browser.session is None
    assert await count(platform, AuthSession) == 0
    me = await browser.request("GET", "/auth/me")
    assert me.status_code == 401


# --- success ----------------------------------------------------------------------------------------------------


async def test_login_creates_the_account_and_a_session(
    browser: Browser, platform: Platform, oidc_provider: OIDCProvider
) -> None:
    authorize = await begin(browser, "/notices?page=2")
    sent = dict(parse_qsl(urlsplit(authorize).query))
    assert authorize.startswith(oidc_provider.metadata["authorization_endpoint"] + "?")
    assert sent["redirect_uri"] == f"{BASE}/m/miki/auth/oidc/callback"
    assert sent["client_id"] == oidc_provider.client_id
    assert sent["response_type"] == "code" and sent["code_challenge_method"] == "S256"
    assert set(sent["scope"].split()) == {"openid", "email", "profile"}
    assert len(sent["state"]) >= 40 and len(sent["nonce"]) >= 40 and len(sent["code_challenge"]) == 43
    assert browser.cookies["tsunagu_oidc_state"] == sent["state"]
    async with platform.sessions.platform() as session:
        (stored,) = (await session.scalars(select(OidcLoginState))).all()
    assert stored.state_hash != sent["state"] and stored.nonce == sent["nonce"]
    assert stored.redirect_to == "/notices?page=2" and stored.used_at is None

    response = await browser.request("GET", local(await at_provider(oidc_provider, authorize, "alice")))
    assert response.status_code == 302, response.text
    assert response.headers["location"] == "/m/miki/notices?page=2"
    assert browser.session is not None
    assert "tsunagu_oidc_state" not in browser.cookies  # the binding cookie is cleared

    me = await browser.request("GET", "/auth/me")
    assert me.status_code == 200, me.text
    body = me.json()
    assert body["display_name"] == "三木 花子" and body["email"] == "alice@example.jp"
    assert body["municipality"] == "miki" and body["roles"] == []  # no role is granted by logging in
    account_id = await identity_account(platform, oidc_provider, "alice")
    assert str(account_id) == body["id"]
    async with platform.sessions.platform() as session:
        account = await session.get(Account, account_id)
        assert account is not None and (account.family_name, account.given_name) == ("三木", "花子")
        assert (await session.scalar(select(OidcLoginState))).used_at is not None  # type: ignore[union-attr]
    assert await count(platform, RoleGrant, RoleGrant.account_id == account_id) == 0
    async with platform.sessions.platform() as session:  # the new account is in miki's audit log
        (event,) = (
            await session.scalars(select(AuditEvent).where(AuditEvent.target_type == "account"))
        ).all()
    assert (event.action, event.target_id, event.actor) == (
        "core.account_created",
        str(account_id),
        f"account:{account_id}",
    )
    assert event.municipality_id == platform.municipality("miki").id and event.payload == {"method": "oidc"}


async def test_second_login_with_the_same_subject_reuses_the_account(
    browser: Browser, platform: Platform, oidc_provider: OIDCProvider
) -> None:
    assert (await log_in(browser, oidc_provider, "carol")).status_code == 302
    first = await identity_account(platform, oidc_provider, "carol")
    first_session = browser.session
    assert (await log_in(browser, oidc_provider, "carol")).status_code == 302
    assert await identity_account(platform, oidc_provider, "carol") == first
    assert await count(platform, Account) == 1 and await count(platform, OidcIdentity) == 1
    assert await count(platform, AuditEvent, AuditEvent.action == "core.account_created") == 1
    assert browser.session != first_session
    # The earlier session of this browser was replaced, not left open beside the new one.
    assert await count(platform, AuthSession, AuthSession.revoked_at.is_(None)) == 1
    me = (await browser.request("GET", "/auth/me")).json()
    assert me["id"] == str(first) and me["email"] is None and me["display_name"] == "Carol Naoshima"


async def test_unverified_email_is_not_linked_to_the_account_that_has_it(
    browser: Browser, platform: Platform, oidc_provider: OIDCProvider
) -> None:
    assert oidc_provider.accounts["bob"]["email_verified"] is False
    existing = await make_account(
        platform, oidc_provider.accounts["bob"]["email"], None, display_name="本物の Bob"
    )
    response = await log_in(browser, oidc_provider, "bob")
    assert response.status_code == 302, response.text
    created = await identity_account(platform, oidc_provider, "bob")
    assert created is not None and created != existing
    me = (await browser.request("GET", "/auth/me")).json()
    assert me["id"] == str(created) and me["email"] is None and me["display_name"] == "Bob Sanuki"
    assert await count(platform, OidcIdentity, OidcIdentity.account_id == existing) == 0


async def test_unverified_email_is_not_kept(
    browser: Browser, platform: Platform, oidc_provider: OIDCProvider
) -> None:
    assert (await log_in(browser, oidc_provider, "bob")).status_code == 302
    assert (await browser.request("GET", "/auth/me")).json()["email"] is None
    assert await count(platform, Account, Account.email.is_not(None)) == 0


async def test_verified_email_of_another_account_is_not_linked_either(
    browser: Browser, platform: Platform, oidc_provider: OIDCProvider
) -> None:
    existing = await make_account(platform, "ALICE@example.jp", None)  # the same address, in any case
    assert (await log_in(browser, oidc_provider, "alice")).status_code == 302
    created = await identity_account(platform, oidc_provider, "alice")
    assert created is not None and created != existing
    assert (await browser.request("GET", "/auth/me")).json()["email"] is None


async def test_disabled_account_is_refused(
    browser: Browser, platform: Platform, oidc_provider: OIDCProvider
) -> None:
    assert (await log_in(browser, oidc_provider, "carol")).status_code == 302
    browser.cookies.clear()
    async with platform.sessions.platform() as session:
        account = await session.get(Account, await identity_account(platform, oidc_provider, "carol"))
        assert account is not None
        account.disabled_at = account.created_at
    response = await log_in(browser, oidc_provider, "carol")
    assert "disabled" in problem(response, 401)["detail"]
    assert browser.session is None
    assert await count(platform, AuthSession) == 1  # the first login's, nothing new


# --- a bad ID token: 401 and no session -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("wrong_nonce", "nonce"),
        ("expired", "expired"),
        ("wrong_aud", "not meant for this service"),
        ("wrong_iss", "another issuer"),
        ("bad_signature", "signature is not valid"),
    ],
)
async def test_defective_id_token_is_refused_without_a_session(
    browser: Browser, platform: Platform, oidc_provider: OIDCProvider, mode: str, reason: str
) -> None:
    response = await log_in(browser, oidc_provider, "alice", mode=mode)
    body = problem(response, 401)
    assert reason in body["detail"], body
    assert body["type"] == "urn:tsunagu:problem:id-token-rejected"
    await assert_no_session(platform, browser, response)
    assert await count(platform, Account) == 0 and await count(platform, OidcIdentity) == 0


async def test_iss_parameter_of_another_issuer_is_refused(
    browser: Browser, platform: Platform, oidc_provider: OIDCProvider
) -> None:
    params = callback_params(await at_provider(oidc_provider, await begin(browser)))
    assert params["iss"] == oidc_provider.issuer
    forged = urlencode(params | {"iss": "https://evil.example"})
    response = await browser.request("GET", f"/auth/oidc/callback?{forged}")
    assert "another issuer" in problem(response, 401)["detail"]
    await assert_no_session(platform, browser, response)
    # Required when the provider advertises RFC 9207 (this one does): leaving it out does not help either.
    params = callback_params(await at_provider(oidc_provider, await begin(browser)))
    without_iss = urlencode({k: v for k, v in params.items() if k != "iss"})
    response = await browser.request("GET", f"/auth/oidc/callback?{without_iss}")
    assert problem(response, 401)["type"] == "urn:tsunagu:problem:oidc-login-failed"
    await assert_no_session(platform, browser, response)


# --- the state: 400 -------------------------------------------------------------------------------------------


async def test_replayed_callback_is_refused(
    browser: Browser, platform: Platform, oidc_provider: OIDCProvider
) -> None:
    callback = await at_provider(oidc_provider, await begin(browser))
    assert (await browser.request("GET", local(callback))).status_code == 302
    browser.cookies["tsunagu_oidc_state"] = callback_params(callback)[
        "state"
    ]  # a replay from the same browser
    again = await browser.request("GET", local(callback))
    assert "already used" in problem(again, 400)["detail"]
    assert await count(platform, AuthSession) == 1


async def test_state_from_another_municipality_is_refused(
    client: httpx.AsyncClient, platform: Platform, oidc_provider: OIDCProvider
) -> None:
    miki = Browser(client)
    callback = await at_provider(oidc_provider, await begin(miki))
    sanuki = Browser(client, prefix="/m/sanuki")
    sanuki.cookies = dict(miki.cookies)  # even with the binding cookie carried over
    response = await sanuki.request("GET", local(callback))
    assert "not known here" in problem(response, 400)["detail"]
    await assert_no_session(platform, sanuki, response)
    # Refused there without being used up: it still completes where it began.
    assert (await miki.request("GET", local(callback))).status_code == 302


async def test_callback_in_another_browser_is_refused(
    client: httpx.AsyncClient, platform: Platform, oidc_provider: OIDCProvider
) -> None:
    """Login CSRF: an attacker's callback URL (their own login) opened in the victim's browser."""
    attacker = Browser(client)
    callback = await at_provider(oidc_provider, await begin(attacker), "bob")
    victim = Browser(client)
    response = await victim.request("GET", local(callback))
    assert "another browser" in problem(response, 400)["detail"]
    await assert_no_session(platform, victim, response)


async def test_missing_or_unknown_state_is_refused(browser: Browser, platform: Platform) -> None:
    for query in ("code=abc", "code=abc&state=", "code=abc&state=" + "A" * 43, "code=abc&state=%3Cscript%3E"):
        browser.cookies["tsunagu_oidc_state"] = "A" * 43
        response = await browser.request("GET", f"/auth/oidc/callback?{query}")
        assert problem(response, 400)["type"] == "urn:tsunagu:problem:login-state-rejected", query
        await assert_no_session(platform, browser, response)


async def test_expired_state_is_refused(
    browser: Browser, platform: Platform, oidc_provider: OIDCProvider
) -> None:
    callback = await at_provider(oidc_provider, await begin(browser))
    async with platform.sessions.platform() as session:
        row = await session.scalar(select(OidcLoginState))
        assert row is not None
        row.expires_at = row.created_at
    response = await browser.request("GET", local(callback))
    assert "expired" in problem(response, 400)["detail"]
    await assert_no_session(platform, browser, response)


async def test_long_expired_states_are_cleared_when_a_login_begins(
    browser: Browser, platform: Platform, oidc_provider: OIDCProvider
) -> None:
    await begin(browser)
    async with platform.sessions.platform() as session:
        row = await session.scalar(select(OidcLoginState))
        assert row is not None
        row.expires_at = row.created_at - timedelta(hours=2)
    await begin(browser)
    assert await count(platform, OidcLoginState) == 1


async def test_provider_error_is_reported_with_its_code(
    browser: Browser, platform: Platform, oidc_provider: OIDCProvider
) -> None:
    callback = await asyncio.to_thread(oidc_provider.deny, await begin(browser), "access_denied")
    response = await browser.request("GET", local(callback))
    body = problem(response, 400)
    assert "access_denied" in body["detail"] and body["errors"] == [{"error": "access_denied"}]
    await assert_no_session(platform, browser, response)
    async with platform.sessions.platform() as session:  # the state is used up
        assert (await session.scalar(select(OidcLoginState.used_at))) is not None


# --- where it is not offered, and next ---------------------------------------------------------------------------


async def test_municipality_without_oidc_answers_404(client: httpx.AsyncClient) -> None:
    takamatsu = Browser(client, prefix="/m/takamatsu")
    assert problem(await takamatsu.request("GET", "/auth/oidc/login"), 404)
    assert problem(await takamatsu.request("GET", "/auth/oidc/callback?code=a&state=b"), 404)


async def test_next_must_be_a_path_on_this_site(browser: Browser, platform: Platform) -> None:
    for next_path in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        response = await browser.request("GET", "/auth/oidc/login", params={"next": next_path})
        assert "next" in problem(response, 400)["detail"], next_path
    assert await count(platform, OidcLoginState) == 0


async def test_missing_client_secret_is_503_and_says_no_more(
    browser: Browser, oidc_provider: OIDCProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TSUNAGU_OIDC_SECRET_MIKI")
    body = problem(await browser.request("GET", "/auth/oidc/login"), 503)
    assert "TSUNAGU" not in body["detail"]
