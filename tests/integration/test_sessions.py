"""Browser sessions over HTTP: rotation at login, logout, CSRF on every state-changing route, expiry, activity,
and a session of one municipality presented at another. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from litestar import delete, get, patch, post, put
from sqlalchemy import select, update

from core import Plugin, PluginMeta, Title, hookimpl
from core.app import create_app
from core.db.base import utcnow
from core.identity import authenticated
from core.identity.authn import sha256_hex
from core.identity.config import AuthConfig
from core.identity.models import Account, ApiKey, AuthSession
from core.identity.passwords import set_password
from core.platform import Platform, create_platform
from core.tenancy import service
from core.tenancy.manifest import load_manifests
from tests import conftest
from tests.asgi import lifespan_client
from tests.integration.test_login import (
    PASSWORD,
    SQLITE_ONLY,
    Browser,
    cheap_hashing,  # noqa: F401 - an autouse fixture: cheap argon2 here too
    make_account,
    problem,
    set_auth,
    set_cookies,
)


class Desk(Plugin):
    """A throwaway plugin whose routes change things, each open to any signed-in caller."""

    meta = PluginMeta(name="desk", version="1.0", title=Title(ja="窓口", en="Desk"))

    @hookimpl
    def register_routes(self) -> list[Any]:
        @get("/note", guards=[authenticated], sync_to_thread=False)
        def read() -> dict[str, str]:
            return {"done": "read"}

        @post("/note", guards=[authenticated], status_code=200, sync_to_thread=False)
        def create() -> dict[str, str]:
            return {"done": "post"}

        @put("/note", guards=[authenticated], sync_to_thread=False)
        def replace() -> dict[str, str]:
            return {"done": "put"}

        @patch("/note", guards=[authenticated], sync_to_thread=False)
        def change() -> dict[str, str]:
            return {"done": "patch"}

        @delete("/note", guards=[authenticated], status_code=200, sync_to_thread=False)
        def remove() -> dict[str, str]:
            return {"done": "delete"}

        return [read, create, replace, change, remove]


@pytest.fixture
async def desk_platform(database_url: str) -> AsyncIterator[Platform]:
    platform = create_platform(conftest.test_settings(database_url), extra_plugins=[Desk()])
    await platform.refresh(force=True)
    await service.apply_manifests(
        platform, load_manifests(conftest.MANIFESTS), [str(p) for p in conftest.MANIFESTS]
    )
    await service.set_plugin_enabled(platform, "miki", "desk", True)
    try:
        yield platform
    finally:
        await platform.close()


@pytest.fixture
async def desk(desk_platform: Platform) -> AsyncIterator[Browser]:
    async with lifespan_client(create_app(platform=desk_platform, run_jobs_in_process=False)) as client:
        yield Browser(client)


@pytest.fixture
def browser(client: httpx.AsyncClient) -> Browser:
    return Browser(client)


async def signed_in(platform: Platform, browser: Browser, email: str = "taro@example.jp") -> uuid.UUID:
    account_id = await make_account(platform, email)
    response = await browser.login(email)
    assert response.status_code == 200, response.text
    return account_id


async def session_row(platform: Platform, token: str) -> AuthSession:
    async with platform.sessions.platform() as session:
        row = await session.scalar(select(AuthSession).where(AuthSession.token_hash == sha256_hex(token)))
        assert row is not None
        return row


# --- rotation and logout --------------------------------------------------------------------------------------


async def test_a_login_revokes_the_session_cookie_it_was_sent_with(
    platform: Platform, browser: Browser
) -> None:
    await signed_in(platform, browser)
    old = browser.session
    assert old is not None
    assert (await browser.login("taro@example.jp")).status_code == 200
    new = browser.session
    assert new is not None and new != old
    assert (await session_row(platform, old)).revoked_at is not None
    assert (await browser.request("GET", "/auth/me")).status_code == 200
    browser.cookies["tsunagu_session"] = old
    body = problem(await browser.request("GET", "/auth/me"), 401)
    assert body["detail"] == "the session has ended; log in again"


@SQLITE_ONLY
async def test_a_login_as_someone_else_replaces_the_session(platform: Platform, browser: Browser) -> None:
    await signed_in(platform, browser)
    hanako = await make_account(platform, "hanako@example.jp", display_name="三木 花子")
    assert (await browser.login("hanako@example.jp")).status_code == 200
    assert (await browser.request("GET", "/auth/me")).json()["id"] == str(hanako)


async def test_logout_revokes_the_session_and_clears_the_cookie(platform: Platform, browser: Browser) -> None:
    await signed_in(platform, browser)
    token = browser.session
    assert token is not None
    response = await browser.request("POST", "/auth/logout", csrf=browser.csrf)
    assert response.status_code == 204, response.text
    cleared = set_cookies(response)["tsunagu_session"]
    assert cleared.value == "" and cleared["max-age"] == "0" and cleared["path"] == "/m/miki/"
    assert browser.session is None
    assert (await session_row(platform, token)).revoked_at is not None
    browser.cookies["tsunagu_session"] = token  # a copy of the old cookie is worth nothing anywhere
    problem(await browser.request("GET", "/auth/me"), 401)
    problem(await browser.request("POST", "/auth/logout", csrf=browser.csrf), 401)


async def test_logout_needs_the_csrf_token(platform: Platform, browser: Browser) -> None:
    await signed_in(platform, browser)
    problem(await browser.request("POST", "/auth/logout"), 403)  # another site cannot sign the person out
    assert (await browser.request("GET", "/auth/me")).status_code == 200
    form = await browser.request("POST", "/auth/logout", data={"csrf_token": browser.csrf})
    assert form.status_code == 204, form.text


@SQLITE_ONLY
async def test_me_and_logout_need_a_session(browser: Browser) -> None:
    problem(await browser.request("GET", "/auth/me"), 401)
    problem(await browser.request("POST", "/auth/logout"), 401)


async def test_setting_a_new_password_ends_the_sessions(platform: Platform, browser: Browser) -> None:
    account_id = await signed_in(platform, browser)
    await set_password(platform, account_id, "another long password")
    problem(await browser.request("GET", "/auth/me"), 401)
    problem(await browser.login("taro@example.jp", PASSWORD), 401)
    assert (await browser.login("taro@example.jp", "another long password")).status_code == 200


# --- CSRF on every route --------------------------------------------------------------------------------------


async def test_state_changing_requests_on_a_session_cookie_need_its_csrf_token(
    desk_platform: Platform, desk: Browser
) -> None:
    await signed_in(desk_platform, desk)
    assert (await desk.request("GET", "/desk/note")).json() == {"done": "read"}  # reading needs none
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        missing = problem(await desk.request(method, "/desk/note"), 403)
        assert missing["title"] == "CSRF token missing or wrong"
        assert "X-CSRF-Token" in missing["detail"]
        problem(await desk.request(method, "/desk/note", csrf="x" * 43), 403)
        problem(await desk.request(method, "/desk/note", csrf=desk.csrf + "x"), 403)  # type: ignore[operator]
        latin1 = {"x-csrf-token": "ü".encode("latin-1")}  # type: ignore[dict-item]
        problem(await desk.request(method, "/desk/note", headers=latin1), 403)  # not even ASCII
        right = await desk.request(method, "/desk/note", csrf=desk.csrf)
        assert right.status_code == 200, (method, right.text)
        assert right.json() == {"done": method.lower()}
    form = await desk.request("POST", "/desk/note", data={"csrf_token": desk.csrf})
    assert form.json() == {"done": "post"}
    problem(await desk.request("POST", "/desk/note", data={"csrf_token": "x" * 43}), 403)


@SQLITE_ONLY
async def test_another_sessions_csrf_token_does_not_do(desk_platform: Platform, desk: Browser) -> None:
    await signed_in(desk_platform, desk)
    other = Browser(desk.client)
    await signed_in(desk_platform, other, "hanako@example.jp")
    problem(await desk.request("POST", "/desk/note", csrf=other.csrf), 403)


async def test_api_keys_and_tokens_need_no_csrf_token(desk_platform: Platform, desk: Browser) -> None:
    await signed_in(desk_platform, desk)
    prefix, secret = secrets.token_hex(4), secrets.token_urlsafe(24)
    key = f"tsu_{prefix}_{secret}"
    async with desk_platform.sessions.tenant(desk_platform.municipality("miki").id) as session:
        session.add(ApiKey(prefix=prefix, secret_hash=sha256_hex(key), name="vendor", scopes=[]))
    response = await desk.request("POST", "/desk/note", headers={"x-api-key": key})  # the cookie rides along
    assert response.status_code == 200, response.text
    assert (await desk.request("POST", "/desk/note")).status_code == 403  # the cookie alone still needs it
    problem(await desk.request("GET", "/auth/me", headers={"x-api-key": key}), 403)  # a key is no person


# --- expiry, activity, municipalities -------------------------------------------------------------------------


async def test_an_expired_session_is_401(platform: Platform, browser: Browser) -> None:
    await signed_in(platform, browser)
    async with platform.sessions.platform() as session:
        await session.execute(update(AuthSession).values(expires_at=utcnow() - timedelta(seconds=1)))
    body = problem(await browser.request("GET", "/auth/me"), 401)
    assert body["detail"] == "the session has ended; log in again"


async def test_a_session_lasts_the_municipalitys_session_hours(platform: Platform, browser: Browser) -> None:
    await set_auth(platform, "miki", AuthConfig(session_hours=2))
    await signed_in(platform, browser)
    row = await session_row(platform, browser.session or "")
    assert row.expires_at - row.created_at == timedelta(hours=2)
    assert 7100 < int(browser_cookie_max_age(await browser.login("taro@example.jp"))) <= 7200


def browser_cookie_max_age(response: httpx.Response) -> str:
    return set_cookies(response)["tsunagu_session"]["max-age"]


async def test_activity_is_recorded_at_most_once_a_minute(platform: Platform, browser: Browser) -> None:
    await signed_in(platform, browser)
    token = browser.session or ""
    created = (await session_row(platform, token)).last_seen_at
    assert (await browser.request("GET", "/auth/me")).status_code == 200
    assert (await session_row(platform, token)).last_seen_at == created  # within the minute: no write
    earlier = utcnow() - timedelta(minutes=5)
    async with platform.sessions.platform() as session:
        await session.execute(update(AuthSession).values(last_seen_at=earlier))
    assert (await browser.request("GET", "/auth/me")).status_code == 200
    seen = (await session_row(platform, token)).last_seen_at
    assert seen > earlier + timedelta(minutes=4)


async def test_a_disabled_account_loses_its_sessions(platform: Platform, browser: Browser) -> None:
    account_id = await signed_in(platform, browser)
    async with platform.sessions.platform() as session:
        await session.execute(update(Account).where(Account.id == account_id).values(disabled_at=utcnow()))
    problem(await browser.request("GET", "/auth/me"), 401)


async def test_a_session_of_one_municipality_is_refused_at_another(
    platform: Platform, browser: Browser
) -> None:
    await make_account(platform, "taro@example.jp", roles={"miki": ("resident",), "takamatsu": ("staff",)})
    assert (await browser.login("taro@example.jp")).status_code == 200
    elsewhere = Browser(browser.client, prefix="/m/takamatsu")
    elsewhere.cookies = dict(browser.cookies)  # the cookie copied to another municipality's path
    body = problem(await elsewhere.request("GET", "/auth/me"), 403)
    assert body["detail"] == "this session was issued for another municipality"
    problem(await elsewhere.request("POST", "/auth/logout", csrf=browser.csrf), 403)
    assert (await browser.request("GET", "/auth/me")).json()["roles"] == ["resident"]  # still good at home
    assert (await elsewhere.login("taro@example.jp")).status_code == 200  # its own session there
    me = (await elsewhere.request("GET", "/auth/me")).json()
    assert (me["municipality"], me["roles"]) == ("takamatsu", ["staff"])


@SQLITE_ONLY
async def test_an_operator_is_an_operator_everywhere(platform: Platform, browser: Browser) -> None:
    await make_account(platform, "ops@example.jp", roles={}, is_operator=True)
    assert (await browser.login("ops@example.jp")).status_code == 200
    me = (await browser.request("GET", "/auth/me")).json()
    assert (me["roles"], me["is_operator"]) == ([], True)


@SQLITE_ONLY
async def test_secrets_never_reach_the_logs(
    platform: Platform, browser: Browser, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO")  # at DEBUG the database driver logs SQL parameters: the email, never a secret
    await signed_in(platform, browser)
    secrets_seen = [PASSWORD, "a wrong password, logged nowhere", "taro@example.jp"]
    secrets_seen += [browser.session or "?", browser.csrf or "?", browser.cookies["tsunagu_login_csrf"]]
    problem(await browser.login("taro@example.jp", "a wrong password, logged nowhere"), 401)
    assert (await browser.request("POST", "/auth/logout", csrf=browser.csrf)).status_code == 204
    logged = caplog.text
    for event in ("auth.password_set", "auth.logged_in", "auth.login_refused", "auth.logged_out"):
        assert event in logged  # the log was captured at all
    for secret in secrets_seen:
        assert secret not in logged
