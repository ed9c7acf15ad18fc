"""No secret reaches the production log, whoever logs it and however.

Real requests carry every kind of secret the platform handles — a password (a real login), a session cookie and
its CSRF token (from that login), an API key and a Bearer access token (issued for the key) — through the real
app with production JSON logging, captured from the log handler's own stream. A throwaway plugin plays the
careless code: it logs whole requests through structlog and through a standard-library logger, and fails with
the request body in its exception. Explicit log events with the same values are added. Not one of the secret
values may appear in what was written, while the lines themselves must be there.
"""

from __future__ import annotations

import io
import json
import logging
import secrets
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import structlog
from argon2 import PasswordHasher
from litestar import Request, post

from core import Plugin, PluginMeta, Title, hookimpl
from core.app import create_app
from core.identity import accounts, passwords
from core.identity.authn import CSRF_HEADER, SESSION_COOKIE
from core.identity.people import parse_person
from core.identity.routes import LOGIN_CSRF_COOKIE
from core.logging import configure_logging
from core.platform import Platform, create_platform
from core.settings import Settings
from core.tenancy import service
from core.tenancy.manifest import load_manifests
from tests import conftest
from tests.asgi import lifespan_client
from tests.integration.test_access_matrix import make_key

pytestmark = pytest.mark.parametrize("backend", ["sqlite"])  # what is logged does not depend on the database

PASSWORD = "Sup3r-Secret-Passw0rd-" + secrets.token_hex(4)
HOST = {"host": "miki.localhost"}  # production binds by host, not by /m/<slug>/
chatty_log = structlog.get_logger("chatty")
raw_log = logging.getLogger("chatty.raw")


class Chatty(Plugin):
    """Logs everything it is sent: the code the redaction is there to catch."""

    meta = PluginMeta(name="chatty", version="1.0", title=Title(ja="おしゃべり", en="Chatty"))

    @hookimpl
    def register_routes(self) -> list[Any]:
        @post("/echo", status_code=200)
        async def echo(request: Request[Any, Any, Any]) -> dict[str, str]:
            body = (await request.body()).decode()
            chatty_log.info(
                "chatty.request", headers=dict(request.headers), cookies=request.cookies, body=body
            )
            raw_log.warning("raw request %s %s", dict(request.headers), body)  # a foreign, %-formatted line
            return {}

        @post("/fail")
        async def fail(request: Request[Any, Any, Any]) -> None:
            body = (await request.body()).decode()
            raise RuntimeError(f"could not handle {body} sent with {request.headers.get('authorization')}")

        return [echo, fail]


@pytest.fixture(autouse=True)
def cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(passwords, "HASHER", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))


@pytest.fixture
async def production(database_url: str) -> AsyncIterator[Platform]:
    settings = conftest.replace_settings(
        conftest.test_settings(database_url),
        environment="production",
        log_level="info",
        secret_key=secrets.token_urlsafe(48),
    )
    platform = create_platform(settings, extra_plugins=[Chatty()])
    try:
        await platform.refresh(force=True)
        await service.apply_manifests(
            platform, load_manifests(conftest.MANIFESTS), [str(p) for p in conftest.MANIFESTS]
        )
        await service.set_plugin_enabled(platform, "miki", "chatty", True)
        yield platform
    finally:
        await platform.close()
        configure_logging(Settings(environment="test", log_level="warning"))


def capture_handler_stream() -> io.StringIO:
    """Point the handler ``configure_logging`` installed at a buffer: exactly what it writes, nothing else."""
    (handler,) = logging.getLogger().handlers
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    handler.setStream(buffer)
    return buffer


def cookie_header(**cookies: str) -> dict[str, str]:
    return {"cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())}


async def exercise(client: httpx.AsyncClient, platform: Platform, api_key: str) -> dict[str, str]:
    """Every secret through the real app; returns them by name."""
    page = await client.get("/auth/login", headers=HOST)
    login_csrf = page.json()["csrf_token"]
    login_cookie = cookie_header(**{LOGIN_CSRF_COOKIE: login_csrf})
    wrong = await client.post(
        "/auth/login",
        headers={**HOST, **login_cookie, CSRF_HEADER: login_csrf},
        json={"email": "taro@example.jp", "password": PASSWORD + "-wrong"},
    )
    assert wrong.status_code == 401, wrong.text
    logged_in = await client.post(
        "/auth/login",
        headers={**HOST, **login_cookie, CSRF_HEADER: login_csrf},
        json={"email": "taro@example.jp", "password": PASSWORD},
    )
    assert logged_in.status_code == 200, logged_in.text
    session_token = logged_in.cookies[SESSION_COOKIE]
    csrf = logged_in.json()["csrf_token"]
    as_person = {**HOST, **cookie_header(**{SESSION_COOKIE: session_token}), CSRF_HEADER: csrf}
    assert (await client.get("/auth/me", headers=as_person)).status_code == 200

    issued = await client.post("/auth/token", headers={**HOST, "x-api-key": api_key}, json={})
    assert issued.status_code == 200, issued.text
    bearer = issued.json()["access_token"]
    as_system = {**HOST, "authorization": f"Bearer {bearer}"}
    assert (await client.get("/notices/all", headers=as_system)).status_code == 200

    body = {"email": "taro@example.jp", "password": PASSWORD, "api_key": api_key, "token": bearer}
    everything = {**as_person, "x-api-key": api_key, "authorization": f"Bearer {bearer}"}
    assert (await client.post("/chatty/echo", headers=as_person, json=body)).status_code == 200
    assert (
        await client.post("/chatty/echo", headers={**HOST, "x-api-key": api_key}, json=body)
    ).status_code == 200
    assert (await client.post("/chatty/fail", headers=as_system, json=body)).status_code == 500
    # every credential at once is refused (a Bearer token wins), and the request is logged all the same
    assert (await client.post("/chatty/echo", headers=everything, json=body)).status_code == 200

    return {
        "password": PASSWORD,
        "session token": session_token,
        "CSRF token": csrf,
        "API key": api_key,
        "API key secret": api_key.split("_", 2)[2],
        "access token": bearer,
        "access token signature": bearer.rsplit(".", 1)[1],
    }


async def test_no_secret_reaches_the_production_log(production: Platform) -> None:
    platform = production
    taro = await accounts.create_account(
        platform,
        parse_person(
            {
                "display_name": "三木 太郎",
                "family_name": "三木",
                "given_name": "太郎",
                "family_name_kana": "ミキ",
                "given_name_kana": "タロウ",
                "email": "taro@example.jp",
            }
        ),
    )
    await accounts.grant_role(platform, platform.municipality("miki"), taro.id, "staff")
    await passwords.set_password(platform, taro.id, PASSWORD)
    api_key = (await make_key(platform, "miki", frozenset({"notices:read"}))).headers["x-api-key"]

    app = create_app(platform=platform, run_jobs_in_process=False)  # configures production logging
    written = capture_handler_stream()
    async with lifespan_client(app) as client:
        secret_values = await exercise(client, platform, api_key)
        structlog.get_logger("explicit").info(
            "explicit.event",
            password=PASSWORD,
            headers={"Authorization": f"Bearer {secret_values['access token']}", "X-API-Key": api_key},
            cookie=f"{SESSION_COOKIE}={secret_values['session token']}",
            note=f"retrying with password={PASSWORD}&api_key={api_key}",
        )
        logging.getLogger("uvicorn.error").warning(
            "upstream said: Authorization: Bearer %s", secret_values["access token"]
        )
    text = written.getvalue()

    records = [json.loads(line) for line in text.splitlines() if line.strip()]
    events = {r["event"] for r in records}
    # The lines are there (the test would pass on an empty log otherwise) ...
    assert {"chatty.request", "explicit.event", "request.unhandled_exception", "auth.logged_in"} <= events, (
        events
    )
    assert any(r["event"].startswith("raw request") for r in records)
    assert any(r["event"].startswith("upstream said") for r in records)
    assert sum(r.get("logger") == "tsunagu.access" for r in records) >= 10
    # ... and no secret is in any of them,
    leaked = [name for name, value in secret_values.items() if value in text]
    assert not leaked, f"in the log: {leaked}"
    # not even in a traceback, while the rest of it is kept.
    failure = next(r for r in records if r["event"] == "request.unhandled_exception")
    assert "RuntimeError: could not handle" in failure["exception"]
    assert "***" in failure["exception"]
    explicit = next(r for r in records if r["event"] == "explicit.event")
    assert explicit["password"] == "***" and explicit["headers"] == {
        "Authorization": "***",
        "X-API-Key": "***",
    }
