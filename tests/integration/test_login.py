"""Password login over HTTP: success, one answer for every kind of failure, login CSRF, cookies, throttling.

Runs on SQLite and PostgreSQL. Accounts are made directly in the database (``make_account``) with the real
``set_password``; hashing uses cheap argon2 parameters so the suite stays fast (``cheap_hashing``).
"""

from __future__ import annotations

import asyncio
import http.cookiejar
import http.cookies
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import httpx
import msgspec
import pytest
from argon2 import PasswordHasher
from sqlalchemy import select, update

from core.app import create_app
from core.db.base import utcnow
from core.exceptions import InvalidInput, NotFound
from core.identity import passwords, throttle
from core.identity.config import AuthConfig
from core.identity.models import Account, AuthSession, LoginThrottle, PasswordCredential, RoleGrant
from core.identity.passwords import set_password
from core.logging import configure_logging
from core.platform import Platform, create_platform
from core.settings import Settings
from core.tenancy import service
from core.tenancy.manifest import load_manifests
from tests import conftest
from tests.asgi import lifespan_client

PROBLEM = "application/problem+json"
PASSWORD = "correct horse battery staple"
SQLITE_ONLY = pytest.mark.parametrize("backend", ["sqlite"])
"""For tests of HTTP behaviour that does not depend on the database (the rest run on both)."""


# --- helpers (test_sessions.py uses them too) -----------------------------------------------------------------


class CountingHasher(PasswordHasher):
    """The cheap hasher, counting calls to ``verify``."""

    def __init__(self, time_cost: int = 1) -> None:
        super().__init__(time_cost=time_cost, memory_cost=8, parallelism=1)
        self.verified = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:  # noqa: A002 - argon2's name
        self.verified += 1
        return super().verify(hash, password)


@pytest.fixture(autouse=True)
def cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> CountingHasher:
    hasher = CountingHasher()
    monkeypatch.setattr(passwords, "HASHER", hasher)
    return hasher


async def make_account(
    platform: Platform,
    email: str | None,
    password: str | None = PASSWORD,
    *,
    display_name: str = "三木 太郎",
    roles: dict[str, tuple[str, ...]] | None = None,
    disabled: bool = False,
    is_operator: bool = False,
) -> uuid.UUID:
    """An account (resident of miki unless ``roles`` says otherwise), with a password unless ``None``."""
    roles = {"miki": ("resident",)} if roles is None else roles
    async with platform.sessions.platform() as session:
        account = Account(
            email=email,
            display_name=display_name,
            is_operator=is_operator,
            disabled_at=utcnow() if disabled else None,
        )
        session.add(account)
        await session.flush()
        for slug, held in roles.items():
            for role in held:
                session.add(
                    RoleGrant(
                        municipality_id=platform.municipality(slug).id, account_id=account.id, role=role
                    )
                )
        account_id = account.id
    if password is not None:
        await set_password(platform, account_id, password)
    return account_id


def parse_set_cookie(header: str) -> http.cookies.Morsel[str]:
    jar: http.cookies.SimpleCookie = http.cookies.SimpleCookie()
    jar.load(header)
    (morsel,) = jar.values()
    return morsel


def set_cookies(response: httpx.Response) -> dict[str, http.cookies.Morsel[str]]:
    return {m.key: m for m in map(parse_set_cookie, response.headers.get_list("set-cookie"))}


class _RefuseAll(http.cookiejar.DefaultCookiePolicy):
    def set_ok(self, cookie: http.cookiejar.Cookie, request: Any) -> bool:
        return False


def without_cookie_jar(client: httpx.AsyncClient) -> httpx.AsyncClient:
    """Cookies in these tests are sent explicitly (``Browser``), never by httpx behind the test's back."""
    client.cookies = http.cookiejar.CookieJar(policy=_RefuseAll())  # type: ignore[assignment]
    return client


class Browser:
    """A browser on one municipality's path prefix: keeps the cookies it is given and sends them back."""

    def __init__(
        self, client: httpx.AsyncClient, prefix: str = "/m/miki", headers: dict[str, str] | None = None
    ):
        self.client = without_cookie_jar(client)
        self.prefix = prefix
        self.headers = headers or {}
        self.cookies: dict[str, str] = {}
        self.csrf: str | None = None
        """The session's CSRF token, from the last successful login."""

    async def request(
        self,
        method: str,
        path: str,
        *,
        csrf: str | None = None,
        headers: dict[str, str] | None = None,
        **kw: Any,
    ) -> httpx.Response:
        sent = {**self.headers, **(headers or {})}
        if self.cookies:
            sent["cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if csrf is not None:
            sent["x-csrf-token"] = csrf
        response = await self.client.request(method, self.prefix + path, headers=sent, **kw)
        for name, morsel in set_cookies(response).items():
            if morsel["max-age"] == "0":
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = morsel.value
        return response

    async def login_csrf(self) -> str:
        response = await self.request("GET", "/auth/login")
        assert response.status_code == 200, response.text
        return response.json()["csrf_token"]

    async def login(self, email: str, password: str = PASSWORD) -> httpx.Response:
        response = await self.request(
            "POST", "/auth/login", json={"email": email, "password": password}, csrf=await self.login_csrf()
        )
        if response.status_code == 200:
            self.csrf = response.json()["csrf_token"]
        return response

    @property
    def session(self) -> str | None:
        return self.cookies.get("tsunagu_session")


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = msgspec.json.decode(response.content)
    assert body["status"] == status
    return body


async def set_auth(platform: Platform, slug: str, auth: AuthConfig) -> None:
    """Change one municipality's ``[auth]`` the way an administrator does: through its manifest."""
    manifest = next(m for m in load_manifests(conftest.MANIFESTS) if m.slug == slug)
    await service.apply_manifests(platform, [msgspec.structs.replace(manifest, auth=auth)], [f"{slug}.toml"])
    await platform.refresh()


async def stored_hash(platform: Platform, account_id: uuid.UUID) -> str:
    async with platform.sessions.platform() as session:
        credential = await session.get(PasswordCredential, account_id)
        assert credential is not None
        return credential.password_hash


@pytest.fixture
def browser(client: httpx.AsyncClient) -> Browser:
    return Browser(client)


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Apps built with production settings switch the process to JSON logs: put test logging back after."""
    yield
    configure_logging(Settings(environment="test", log_level="warning"))


# --- success --------------------------------------------------------------------------------------------------


async def test_a_json_login_opens_a_session_that_me_recognises(platform: Platform, browser: Browser) -> None:
    account_id = await make_account(platform, "taro@example.jp", roles={"miki": ("resident", "staff")})
    response = await browser.login("taro@example.jp")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["account_id"] == str(account_id)
    assert body["display_name"] == "三木 太郎"
    assert len(body["csrf_token"]) >= 40
    assert response.headers["cache-control"] == "no-store"

    me = await browser.request("GET", "/auth/me")
    assert me.status_code == 200, me.text
    assert me.json() == {
        "id": str(account_id),
        "display_name": "三木 太郎",
        "email": "taro@example.jp",
        "municipality": "miki",
        "roles": ["resident", "staff"],
        "is_operator": False,
    }
    async with platform.sessions.platform() as session:
        row = (await session.scalars(select(AuthSession))).one()
    assert row.token_hash != browser.session and len(row.token_hash) == 64  # only the hash is stored
    assert row.csrf_token == body["csrf_token"]
    assert row.municipality_id == platform.municipality("miki").id
    assert timedelta(hours=11, minutes=59) < row.expires_at - row.created_at <= timedelta(hours=12)


async def test_the_email_is_read_as_accounts_store_it(platform: Platform, browser: Browser) -> None:
    await make_account(platform, "taro@example.jp")
    assert (await browser.login(" taro@EXAMPLE.jp ")).status_code == 200
    assert (await browser.login("ｔａｒｏ＠example.jp")).status_code == 200  # full-width, as an IME types it


@SQLITE_ONLY
async def test_the_password_is_read_as_nfkc(platform: Platform, browser: Browser) -> None:
    await make_account(platform, "taro@example.jp", password="Ｐａｓｓｗｏｒｄ１２３")
    assert (await browser.login("taro@example.jp", "Password123")).status_code == 200


async def test_an_html_form_login_sends_the_csrf_token_as_a_field(
    platform: Platform, browser: Browser
) -> None:
    account_id = await make_account(platform, "taro@example.jp")
    form = {"email": "taro@example.jp", "password": PASSWORD, "csrf_token": await browser.login_csrf()}
    response = await browser.request("POST", "/auth/login", data=form)
    assert response.status_code == 200, response.text
    assert response.json()["account_id"] == str(account_id)
    wrong = {**form, "csrf_token": "x" * 43}
    problem(await browser.request("POST", "/auth/login", data=wrong), 403)


@SQLITE_ONLY
async def test_the_session_cookie_is_httponly_lax_and_scoped_to_the_municipality(
    platform: Platform, browser: Browser
) -> None:
    await make_account(platform, "taro@example.jp")
    login_page = await browser.request("GET", "/auth/login")
    response = await browser.login("taro@example.jp")
    for cookie in (set_cookies(login_page)["tsunagu_login_csrf"], set_cookies(response)["tsunagu_session"]):
        assert cookie["httponly"] is True
        assert cookie["samesite"].lower() == "lax"
        assert cookie["path"] == "/m/miki/"
        assert not cookie["secure"]  # environment "test"
        assert not cookie["domain"]
    session = set_cookies(response)["tsunagu_session"]
    assert len(session.value) == 43  # 32 random bytes
    assert 11 * 3600 < int(session["max-age"]) <= 12 * 3600


@SQLITE_ONLY
async def test_in_production_the_cookie_is_secure_and_scoped_to_the_host(
    platform: Platform, restore_logging: None
) -> None:
    await make_account(platform, "taro@example.jp")
    production = create_platform(conftest.replace_settings(platform.settings, environment="production"))
    try:
        async with lifespan_client(create_app(platform=production, run_jobs_in_process=False)) as client:
            browser = Browser(client, prefix="", headers={"host": "miki.localhost"})
            response = await browser.login("taro@example.jp")
            assert response.status_code == 200, response.text
            cookie = set_cookies(response)["tsunagu_session"]
            assert cookie["secure"] is True
            assert cookie["httponly"] is True
            assert cookie["samesite"].lower() == "lax"
            assert cookie["path"] == "/"
    finally:
        await production.close()


async def test_set_password_checks_the_policy_against_the_accounts_email(platform: Platform) -> None:
    account_id = await make_account(platform, "taro@example.jp", password=None)
    with pytest.raises(InvalidInput) as caught:
        await set_password(platform, account_id, "TARO@example.jp")
    assert caught.value.extra["errors"][0]["rule"] == "same_as_email"
    with pytest.raises(InvalidInput, match="rule min_length"):
        await set_password(platform, account_id, "short")
    async with platform.sessions.platform() as session:
        assert await session.get(PasswordCredential, account_id) is None  # nothing was stored
    with pytest.raises(NotFound):
        await set_password(platform, uuid.uuid4(), PASSWORD)


# --- failures -------------------------------------------------------------------------------------------------


async def test_every_failure_gets_the_same_answer_after_one_verification(
    platform: Platform, browser: Browser, cheap_hashing: CountingHasher
) -> None:
    await make_account(platform, "taro@example.jp")
    await make_account(platform, "hanako@example.jp", disabled=True)
    await make_account(platform, "jiro@example.jp", password=None)  # logs in through OpenID only
    attempts = {
        "wrong password": ("taro@example.jp", "not the password at all"),
        "unknown email": ("nobody@example.jp", PASSWORD),
        "disabled account": ("hanako@example.jp", PASSWORD),
        "no password": ("jiro@example.jp", PASSWORD),
    }
    bodies = {}
    for case, (email, password) in attempts.items():
        before = cheap_hashing.verified
        response = await browser.login(email, password)
        bodies[case] = problem(response, 401)
        assert "tsunagu_session" not in set_cookies(response), case
        assert cheap_hashing.verified == before + 1, f"{case}: argon2 must verify exactly once"
    assert bodies["wrong password"]["detail"] == "email or password is wrong"
    assert all(body == bodies["wrong password"] for body in bodies.values()), bodies
    async with platform.sessions.platform() as session:
        assert (await session.scalars(select(AuthSession))).all() == []


async def test_password_login_switched_off_is_404(platform: Platform, browser: Browser) -> None:
    await make_account(platform, "taro@example.jp")
    csrf = await browser.login_csrf()
    await set_auth(platform, "miki", AuthConfig(password_login=False))
    problem(await browser.request("GET", "/auth/login"), 404)
    body = {"email": "taro@example.jp", "password": PASSWORD}
    problem(await browser.request("POST", "/auth/login", json=body, csrf=csrf), 404)
    other = Browser(browser.client, prefix="/m/takamatsu")  # the account may still log in where it is on
    assert (await other.login("taro@example.jp")).status_code == 200


async def test_a_login_without_the_login_csrf_token_is_403(platform: Platform, browser: Browser) -> None:
    await make_account(platform, "taro@example.jp")
    body = {"email": "taro@example.jp", "password": PASSWORD}
    problem(await browser.request("POST", "/auth/login", json=body), 403)  # neither cookie nor header
    token = await browser.login_csrf()
    problem(await browser.request("POST", "/auth/login", json=body), 403)  # cookie, no header
    problem(await browser.request("POST", "/auth/login", json=body, csrf="x" * 43), 403)  # header differs
    browser.cookies.clear()
    problem(await browser.request("POST", "/auth/login", json=body, csrf=token), 403)  # header, no cookie
    assert await throttle.failures(platform, throttle.email_key("taro@example.jp")) == 0  # nothing was tried


@SQLITE_ONLY
async def test_the_login_page_keeps_a_valid_token(browser: Browser) -> None:
    first = await browser.login_csrf()
    assert await browser.login_csrf() == first  # two open tabs do not clobber each other's form
    browser.cookies["tsunagu_login_csrf"] = "short"
    assert await browser.login_csrf() != "short"


@SQLITE_ONLY
async def test_malformed_logins_are_client_errors(platform: Platform, browser: Browser) -> None:
    csrf = await browser.login_csrf()
    for body in ({"email": "taro@example.jp"}, {"email": "a@b.jp", "password": "x", "extra": 1}, [1, 2]):
        problem(await browser.request("POST", "/auth/login", json=body, csrf=csrf), 422)
    long = {"email": "taro@example.jp", "password": "x" * (passwords.MAX_LOGIN_LENGTH + 1)}
    problem(await browser.request("POST", "/auth/login", json=long, csrf=csrf), 422)
    text = await browser.request(
        "POST", "/auth/login", content=b"taro", csrf=csrf, headers={"content-type": "text/plain"}
    )
    problem(text, 415)


async def test_a_hash_with_old_parameters_is_replaced_at_login(
    platform: Platform, browser: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    account_id = await make_account(platform, "taro@example.jp")
    old = await stored_hash(platform, account_id)
    assert "t=1," in old
    monkeypatch.setattr(passwords, "HASHER", CountingHasher(time_cost=2))
    problem(await browser.login("taro@example.jp", "not the password at all"), 401)
    assert await stored_hash(platform, account_id) == old  # a failed login changes nothing
    assert (await browser.login("taro@example.jp")).status_code == 200
    new = await stored_hash(platform, account_id)
    assert "t=2," in new and new.startswith("$argon2id$")
    assert (await browser.login("taro@example.jp")).status_code == 200
    assert await stored_hash(platform, account_id) == new  # up to date: not hashed again


# --- throttling -----------------------------------------------------------------------------------------------


async def test_five_failures_lock_the_email_whether_or_not_it_has_an_account(
    platform: Platform, browser: Browser
) -> None:
    await make_account(platform, "taro@example.jp")
    answers = {}
    for email in ("taro@example.jp", "nobody@example.jp"):
        for _ in range(throttle.EMAIL_LIMIT.attempts):
            problem(await browser.login(email, "not the password at all"), 401)
        locked = await browser.login(email)  # right password (for taro): still refused
        answers[email] = problem(locked, 429)
        retry_after = int(locked.headers["retry-after"])
        assert 0 < retry_after <= 15 * 60
        assert "tsunagu_session" not in set_cookies(locked)
    assert answers["taro@example.jp"] == answers["nobody@example.jp"]
    assert answers["taro@example.jp"]["detail"] == "too many failed logins: try again in 15 minutes"
    other = await make_account(platform, "hanako@example.jp")
    assert (await browser.login("hanako@example.jp")).json()["account_id"] == str(other)  # only that email
    assert (await browser.login("TARO@example.jp")).status_code == 429  # not by changing the case


async def test_the_lock_ends_by_itself(platform: Platform, browser: Browser) -> None:
    await make_account(platform, "taro@example.jp")
    for _ in range(throttle.EMAIL_LIMIT.attempts):
        await browser.login("taro@example.jp", "not the password at all")
    problem(await browser.login("taro@example.jp"), 429)
    async with platform.sessions.platform() as session:  # 16 minutes pass
        for row in await session.scalars(select(LoginThrottle)):
            row.window_started_at -= timedelta(minutes=16)
            row.locked_until = row.locked_until - timedelta(minutes=16) if row.locked_until else None
    assert (await browser.login("taro@example.jp")).status_code == 200


async def test_a_successful_login_clears_the_email_count(platform: Platform, browser: Browser) -> None:
    await make_account(platform, "taro@example.jp")
    key = throttle.email_key("taro@example.jp")
    for _ in range(throttle.EMAIL_LIMIT.attempts - 1):
        problem(await browser.login("taro@example.jp", "not the password at all"), 401)
    assert await throttle.failures(platform, key) == throttle.EMAIL_LIMIT.attempts - 1
    assert (await browser.login("taro@example.jp")).status_code == 200
    assert await throttle.failures(platform, key) == 0
    for _ in range(throttle.EMAIL_LIMIT.attempts):
        problem(await browser.login("taro@example.jp", "not the password at all"), 401)
    problem(await browser.login("taro@example.jp"), 429)


@pytest.fixture
async def app(platform: Platform) -> AsyncIterator[Any]:
    """The app with its lifespan running, for clients that come from other addresses."""
    application = create_app(platform=platform, run_jobs_in_process=False)
    async with lifespan_client(application):
        yield application


def client_from(app: Any, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def test_thirty_failures_from_one_address_lock_that_address(platform: Platform, app: Any) -> None:
    await make_account(platform, "taro@example.jp")
    async with client_from(app, "198.51.100.7") as attacker, client_from(app, "198.51.100.8") as neighbour:
        browser = Browser(attacker)
        assert (await browser.login("taro@example.jp")).status_code == 200  # successes do not count
        for i in range(throttle.ADDRESS_LIMIT.attempts):
            problem(await browser.login(f"guess{i}@example.jp", "not the password at all"), 401)
        locked = await browser.login("taro@example.jp")
        problem(locked, 429)
        assert 0 < int(locked.headers["retry-after"]) <= 15 * 60
        assert (await Browser(neighbour).login("taro@example.jp")).status_code == 200


@SQLITE_ONLY
async def test_ipv6_clients_are_throttled_by_their_64(platform: Platform, app: Any) -> None:
    await make_account(platform, "taro@example.jp")
    for i in range(throttle.ADDRESS_LIMIT.attempts):
        async with client_from(app, f"2001:db8:1:2::{i + 1:x}") as client:
            problem(await Browser(client).login(f"guess{i}@example.jp", "wrong password"), 401)
    async with (
        client_from(app, "2001:db8:1:2:ffff::1") as same_64,
        client_from(app, "2001:db8:1:3::1") as other,
    ):
        problem(await Browser(same_64).login("taro@example.jp"), 429)
        assert (await Browser(other).login("taro@example.jp")).status_code == 200


async def test_parallel_wrong_passwords_lose_no_count_and_try_no_more_than_the_limit(
    platform: Platform, app: Any, cheap_hashing: CountingHasher
) -> None:
    """However many attempts race, the counters are exact and at most five passwords are checked."""
    await make_account(platform, "taro@example.jp")
    limit = throttle.EMAIL_LIMIT.attempts
    async with client_from(app, "198.51.100.9") as client:
        browser = Browser(client)
        csrf = await browser.login_csrf()

        async def attempt(email: str) -> int:
            body = {"email": email, "password": "not the password at all"}
            return (await browser.request("POST", "/auth/login", json=body, csrf=csrf)).status_code

        statuses = await asyncio.gather(*(attempt("taro@example.jp") for _ in range(limit)))
        assert statuses == [401] * limit
        assert await throttle.failures(platform, throttle.email_key("taro@example.jp")) == limit
        before = cheap_hashing.verified
        statuses = await asyncio.gather(*(attempt("hanako@example.jp") for _ in range(3 * limit)))
        assert sorted(statuses) == [401] * limit + [429] * (2 * limit)
        assert cheap_hashing.verified - before == limit
        statuses = await asyncio.gather(*(attempt(f"guess{i}@example.jp") for i in range(8)))
        assert statuses == [401] * 8
        address = throttle.address_key("198.51.100.9")
        assert await throttle.failures(platform, address) == limit + 3 * limit + 8


async def test_concurrent_charges_are_all_counted(platform: Platform) -> None:
    """The upsert itself, raced on as many connections as the pool gives: no update is lost."""
    key = {"email:race": throttle.Limit(attempts=1000)}
    await throttle.charge(platform, key)  # the row exists: every charge below updates it
    await asyncio.gather(*(throttle.charge(platform, key) for _ in range(39)))
    assert await throttle.failures(platform, "email:race") == 40


async def test_old_throttle_rows_are_purged(platform: Platform) -> None:
    await throttle.charge(platform, {"email:old": throttle.EMAIL_LIMIT})
    await throttle.charge(platform, {"email:new": throttle.EMAIL_LIMIT})
    async with platform.sessions.platform() as session:
        await session.execute(
            update(LoginThrottle)
            .where(LoginThrottle.key == "email:old")
            .values(window_started_at=utcnow() - timedelta(minutes=16))
        )
    assert await throttle.purge(platform) == 1
    assert await throttle.failures(platform, "email:old") == 0
    assert await throttle.failures(platform, "email:new") == 1


def test_throttle_keys() -> None:
    assert throttle.email_key("Taro@Example.jp") == throttle.email_key(" ｔａｒｏ＠example.JP")
    assert throttle.email_key("taro@example.jp") != throttle.email_key("jiro@example.jp")
    assert "taro" not in throttle.email_key("taro@example.jp")  # no email is stored
    assert (
        throttle.address_key("2001:db8::1")
        == throttle.address_key("2001:db8::ffff:1")
        == "address:2001:db8::/64"
    )
    assert throttle.address_key("::ffff:198.51.100.7") == throttle.address_key("198.51.100.7")
    assert throttle.address_key("testclient") == "address:testclient"
