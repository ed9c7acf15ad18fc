"""Who may call what: every route of the app, for every kind of caller, on SQLite and PostgreSQL.

The routes are not listed by hand: they are walked from the app ``core.app.create_app`` builds, every path and
method, and each must have a spec below saying how to call it and which guard it carries (a route added without
one, or a guard removed or changed, fails the test). The expected answer is derived from the guard and the
declaration of its permission (default roles, scope), and compared for every caller:

- anonymous; a resident, staff member, administrator and operator signed in at municipality A; an API key of A
  holding the route's scope and one holding every other scope;
- the same from municipality B, all of them calling at A.

Guarded routes answer 401 to anonymous callers and 403 to B's credentials and to callers lacking the role or
scope; otherwise the handler's own answer. Sessions and keys are written straight into the database (a session
row with a known token and CSRF token, a key row with the SHA-256 of a known key), so the test relies on no
service of the login or key code. A hypothesis test checks ``guards.is_allowed`` against a model of the rule.
"""

from __future__ import annotations

import http.cookiejar
import secrets
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import msgspec
import pytest
from argon2 import PasswordHasher
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from core.app import create_app
from core.audit import AuditEvent
from core.db.base import utcnow
from core.http.binding import PLATFORM_PATHS, PLATFORM_PREFIXES
from core.identity import accounts, passwords
from core.identity.authn import API_KEY_PREFIX, CSRF_HEADER, SESSION_COOKIE, sha256_hex
from core.identity.guards import authenticated, is_allowed, requires
from core.identity.models import Account, ApiKey, AuthSession, RoleGrant
from core.identity.permissions import ROLES
from core.identity.principal import Principal
from core.identity.routes import LOGIN_CSRF_COOKIE
from core.platform import Platform, create_platform
from core.settings import Settings
from core.tenancy.registry import Municipality, TenantSnapshot
from plugins.notices import services as notice_services
from plugins.notices.schemas import NoticeCreate
from tests.asgi import lifespan_client
from tsunagu_opinion_box import services as opinion_services
from tsunagu_opinion_box.schemas import OpinionSubmit

A, B = "miki", "takamatsu"
AUTHENTICATED = "(signed in)"
"""The guard :func:`core.identity.guards.authenticated`: any caller of the municipality."""
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


# --- callers --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Caller:
    """One kind of caller, as the expectations see it."""

    name: str
    town: str | None
    kind: str
    """``anonymous``, ``session`` or ``key``."""
    roles: frozenset[str] = frozenset()
    operator: bool = False
    key_scopes: str = ""
    """For keys: ``route`` (the route's scope) or ``others`` (every declared scope but the route's)."""


CALLERS = [
    Caller("anonymous", None, "anonymous"),
    *(
        caller
        for town in (A, B)
        for caller in (
            Caller(f"{town} resident", town, "session", frozenset({"resident"})),
            Caller(f"{town} staff", town, "session", frozenset({"staff"})),
            Caller(f"{town} admin", town, "session", frozenset({"admin"})),
            Caller(f"{town} operator", town, "session", operator=True),
            Caller(f"{town} key with the route's scope", town, "key", key_scopes="route"),
            Caller(f"{town} key with the other scopes", town, "key", key_scopes="others"),
        )
    ),
]


@dataclass
class Credentials:
    headers: dict[str, str] = field(default_factory=dict)
    cookies: dict[str, str] = field(default_factory=dict)
    scopes: frozenset[str] = frozenset()


async def make_account(
    platform: Platform, town: str, roles: frozenset[str], *, operator: bool = False
) -> uuid.UUID:
    """An account holding ``roles`` in ``town`` (written bound to it), or an operator holding none."""
    async with platform.sessions.platform() as session:
        account = Account(
            email=f"{uuid.uuid4().hex[:12]}@example.jp", display_name="試験", is_operator=operator
        )
        session.add(account)
    async with platform.sessions.tenant(platform.municipality(town).id) as session:
        for role in roles:
            session.add(RoleGrant(account_id=account.id, role=role))
    return account.id


async def open_session(platform: Platform, town: str, account_id: uuid.UUID) -> Credentials:
    """A browser session row with a known token: the cookie, and the CSRF header unsafe methods need."""
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    async with platform.sessions.tenant(platform.municipality(town).id) as session:
        session.add(
            AuthSession(
                token_hash=sha256_hex(token),
                account_id=account_id,
                csrf_token=csrf,
                expires_at=utcnow() + timedelta(hours=1),
            )
        )
    return Credentials(headers={CSRF_HEADER: csrf}, cookies={SESSION_COOKIE: token})


async def make_key(platform: Platform, town: str, scopes: frozenset[str]) -> Credentials:
    """An API key row for a known ``tsu_<prefix>_<secret>`` key."""
    prefix = secrets.token_hex(5)
    key = f"{API_KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    async with platform.sessions.tenant(platform.municipality(town).id) as session:
        session.add(ApiKey(prefix=prefix, secret_hash=sha256_hex(key), name="matrix", scopes=sorted(scopes)))
    return Credentials(headers={"x-api-key": key}, scopes=scopes)


class World:
    """Accounts of both towns, and real rows to fill path parameters with."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.accounts: dict[str, uuid.UUID] = {}
        self.notice = self.notice_to_withdraw = ""
        self.receipt = ""
        self.logins = 0

    async def build(self) -> World:
        for caller in CALLERS:
            if caller.kind == "session":
                assert caller.town is not None
                self.accounts[caller.name] = await make_account(
                    self.platform, caller.town, caller.roles, operator=caller.operator
                )
        miki = self.platform.municipality(A)
        async with self.platform.sessions.tenant(miki.id) as session:
            settings: Any = self.platform.plugin_settings(miki, "notices")
            self.notice = str(
                (await notice_services.post_notice(session, settings, NoticeCreate(title="t", body="b"))).id
            )
            self.notice_to_withdraw = str(
                (await notice_services.post_notice(session, settings, NoticeCreate(title="w", body="b"))).id
            )
            box: Any = self.platform.plugin_settings(miki, "opinion_box")
            self.receipt = (
                await opinion_services.submit(session, box, OpinionSubmit(topic="t", body="b"))
            ).receipt
        return self

    async def credentials(self, caller: Caller, scope: str | None) -> Credentials:
        """Fresh credentials for one request (a logout ends its session)."""
        if caller.kind == "anonymous":
            return Credentials()
        assert caller.town is not None
        if caller.kind == "session":
            return await open_session(self.platform, caller.town, self.accounts[caller.name])
        declared = self.platform.permissions.scopes
        if caller.key_scopes == "route":
            scopes = frozenset({scope}) if scope else declared
        else:
            scopes = declared - {scope} if scope else frozenset()
        return await make_key(self.platform, caller.town, scopes)


# --- the routes -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    """How to call one route, which guard it must carry, and what it answers a caller it lets through."""

    guard: str | None
    """``None`` (public), :data:`AUTHENTICATED`, or the permission ``requires`` names."""
    ok: int
    path: Callable[[World], str] | None = None
    """The path with real ids in it; default: the route's path."""
    json: Callable[[World], Any] | None = None
    headers: Callable[[World], dict[str, str]] | None = None
    cookies: Callable[[World], dict[str, str]] | None = None
    answer: Callable[[Caller, Credentials], int] | None = None
    """For handlers that look at the caller themselves: the answer to a caller the guard let through."""

    def expected_answer(self, caller: Caller, credentials: Credentials) -> int:
        return self.answer(caller, credentials) if self.answer else self.ok


LOGIN_CSRF = secrets.token_urlsafe(32)


def _login(world: World) -> dict[str, str]:
    world.logins += 1  # a new email each time: no email reaches the throttle's limit
    return {"email": f"nobody-{world.logins}@example.jp", "password": "not the password"}


def _me(caller: Caller, _credentials: Credentials) -> int:
    return 403 if caller.kind == "key" else 200  # a key acts for a system, not a person


def _logout(caller: Caller, _credentials: Credentials) -> int:
    return 422 if caller.kind == "key" else 204  # logging out ends a browser session, not a key


def _token(caller: Caller, credentials: Credentials) -> int:
    if caller.kind == "anonymous":
        return 401
    if caller.town != A:
        return 403
    return 200  # every role holds a permission that has a scope (a resident: booking.reserve, currency.pay)


def _person_404(caller: Caller, _credentials: Credentials) -> int:
    return 403 if caller.kind == "key" else 404  # booking is for people; the unit or booking does not exist


def _booking_slot() -> dict[str, str]:
    return {
        "unit_id": str(uuid.uuid4()),
        "starts_at": "2027-01-16T10:00:00+09:00",
        "ends_at": "2027-01-16T11:00:00+09:00",
    }


SPECS: dict[tuple[str, str], Spec] = {
    # platform routes, served unbound
    ("GET", "/healthz"): Spec(None, 200),
    ("GET", "/readyz"): Spec(None, 200),
    ("GET", "/municipalities"): Spec(None, 200),
    ("GET", "/.well-known/jwks.json"): Spec(None, 200),
    ("GET", "/schema"): Spec(None, 200),
    ("GET", "/schema/openapi.json"): Spec(None, 200),
    ("GET", "/schema/{path:str}"): Spec(None, 200, path=lambda w: "/schema/openapi.json"),
    ("GET", "/schema/scalar"): Spec(None, 200),
    ("GET", "/schema/swagger"): Spec(None, 200),
    ("GET", "/schema/oauth2-redirect.html"): Spec(None, 200),
    # the municipality and its sign-in
    ("GET", "/"): Spec(None, 200),
    ("GET", "/auth/login"): Spec(None, 200),
    ("POST", "/auth/login"): Spec(
        None,
        401,  # no such account: the one answer for every failed login
        json=_login,
        headers=lambda w: {CSRF_HEADER: LOGIN_CSRF},
        cookies=lambda w: {LOGIN_CSRF_COOKIE: LOGIN_CSRF},
    ),
    ("POST", "/auth/logout"): Spec(AUTHENTICATED, 204, answer=_logout),
    ("GET", "/auth/me"): Spec(AUTHENTICATED, 200, answer=_me),
    ("GET", "/auth/oidc/login"): Spec(None, 404),  # miki has no OpenID provider
    ("GET", "/auth/oidc/callback"): Spec(None, 404),
    ("POST", "/auth/token"): Spec(None, 200, answer=_token),
    ("GET", "/audit/events"): Spec("core.read_audit", 200),
    # notifications: the person's own (403 for API keys, like /auth/me)
    ("GET", "/notifications/inbox"): Spec(AUTHENTICATED, 200, answer=_me),
    ("GET", "/notifications/inbox/unread-count"): Spec(AUTHENTICATED, 200, answer=_me),
    ("POST", "/notifications/inbox/read-all"): Spec(AUTHENTICATED, 200, answer=_me),
    ("GET", "/notifications/preferences"): Spec(AUTHENTICATED, 200, answer=_me),
    ("PUT", "/notifications/preferences"): Spec(
        AUTHENTICATED, 200, json=lambda w: {"channels": {"email": True}}, answer=_me
    ),
    ("GET", "/notifications/topics"): Spec(AUTHENTICATED, 200, answer=_me),
    ("PUT", "/notifications/subscriptions/{topic:str}"): Spec(
        AUTHENTICATED, 200, path=lambda w: "/notifications/subscriptions/bousai", answer=_me
    ),
    ("DELETE", "/notifications/subscriptions/{topic:str}"): Spec(
        AUTHENTICATED,
        204,
        path=lambda w: "/notifications/subscriptions/bousai",
        answer=lambda caller, _c: 403 if caller.kind == "key" else 204,
    ),
    ("POST", "/notifications/inbox/{notification_id:uuid}/read"): Spec(
        AUTHENTICATED,
        404,
        path=lambda w: f"/notifications/inbox/{uuid.uuid4()}/read",
        answer=lambda caller, _c: 403 if caller.kind == "key" else 404,
    ),
    # notifications: staff send to a topic's subscribers
    ("POST", "/notifications/topics/{topic:str}/send"): Spec(
        "core.send_notifications",
        202,
        path=lambda w: "/notifications/topics/bousai/send",
        json=lambda w: {"subject": "お知らせ", "body": "本文"},
    ),
    ("GET", "/notifications/sends/{send_id:uuid}"): Spec(
        "core.send_notifications", 404, path=lambda w: f"/notifications/sends/{uuid.uuid4()}"
    ),
    # notifications: the town's topics and webhooks, by its administrators
    ("POST", "/notifications/topics"): Spec(
        "core.manage_topics",
        201,
        json=lambda w: {"name": f"t{secrets.token_hex(6)}", "title": "話題", "title_en": "Topic"},
    ),
    ("DELETE", "/notifications/topics/{topic:str}"): Spec(
        "core.manage_topics", 404, path=lambda w: "/notifications/topics/nothing"
    ),
    ("GET", "/notifications/webhooks"): Spec("core.manage_webhooks", 200),
    ("POST", "/notifications/webhooks"): Spec(
        "core.manage_webhooks",
        201,
        json=lambda w: {"name": "防災無線", "url": "https://example.jp/hook", "topics": ["bousai"]},
    ),
    ("DELETE", "/notifications/webhooks/{endpoint_id:uuid}"): Spec(
        "core.manage_webhooks", 404, path=lambda w: f"/notifications/webhooks/{uuid.uuid4()}"
    ),
    # booking: looking is public; a person books (a key, acting for a system, gets 403); staff manage
    ("GET", "/booking/facilities"): Spec(None, 200),
    ("GET", "/booking/facilities/export.csv"): Spec(None, 200),
    ("GET", "/booking/facilities/{facility_id:uuid}"): Spec(
        None, 404, path=lambda w: f"/booking/facilities/{uuid.uuid4()}"
    ),
    ("GET", "/booking/facilities/{facility_id:uuid}/availability"): Spec(
        None, 404, path=lambda w: f"/booking/facilities/{uuid.uuid4()}/availability"
    ),
    ("GET", "/booking/units/{unit_id:uuid}/availability"): Spec(
        None, 404, path=lambda w: f"/booking/units/{uuid.uuid4()}/availability"
    ),
    ("GET", "/booking/units/{unit_id:uuid}/calendar.ics"): Spec(
        None, 404, path=lambda w: f"/booking/units/{uuid.uuid4()}/calendar.ics"
    ),
    ("POST", "/booking/facilities"): Spec("booking.manage", 201, json=lambda w: {"name": "町民体育館"}),
    ("PATCH", "/booking/facilities/{facility_id:uuid}"): Spec(
        "booking.manage",
        404,
        path=lambda w: f"/booking/facilities/{uuid.uuid4()}",
        json=lambda w: {"name": "x"},
    ),
    ("POST", "/booking/facilities/{facility_id:uuid}/units"): Spec(
        "booking.manage",
        404,
        path=lambda w: f"/booking/facilities/{uuid.uuid4()}/units",
        json=lambda w: {"name": "A面"},
    ),
    ("PATCH", "/booking/facilities/{facility_id:uuid}/units/{unit_id:uuid}"): Spec(
        "booking.manage",
        404,
        path=lambda w: f"/booking/facilities/{uuid.uuid4()}/units/{uuid.uuid4()}",
        json=lambda w: {"active": False},
    ),
    ("POST", "/booking/blocks"): Spec("booking.manage", 404, json=lambda w: _booking_slot()),
    ("GET", "/booking/reservations"): Spec("booking.read_all", 200),
    ("POST", "/booking/reservations"): Spec(
        "booking.reserve", 404, json=lambda w: _booking_slot(), answer=_person_404
    ),
    ("GET", "/booking/reservations/mine"): Spec("booking.reserve", 200, answer=_me),
    ("GET", "/booking/reservations/mine/calendar.ics"): Spec("booking.reserve", 200, answer=_me),
    ("POST", "/booking/reservations/{reservation_id:uuid}/{transition:str}"): Spec(
        "booking.reserve",
        404,
        path=lambda w: f"/booking/reservations/{uuid.uuid4()}/confirm",
        answer=_person_404,
    ),
    ("POST", "/booking/waitlist"): Spec(
        "booking.reserve", 404, json=lambda w: _booking_slot(), answer=_person_404
    ),
    ("GET", "/booking/waitlist/mine"): Spec("booking.reserve", 200, answer=_me),
    ("POST", "/booking/waitlist/{entry_id:uuid}/withdraw"): Spec(
        "booking.reserve",
        404,
        path=lambda w: f"/booking/waitlist/{uuid.uuid4()}/withdraw",
        answer=_person_404,
    ),
    ("POST", "/booking/lottery/applications"): Spec(
        "booking.reserve",
        404,
        json=lambda w: {"facility_id": str(uuid.uuid4()), "month": "2027-01", "wishes": []},
        answer=_person_404,
    ),
    ("GET", "/booking/lottery/applications/mine"): Spec("booking.reserve", 200, answer=_me),
    # health: the session list is public; people take part (a key gets 403 where a person is needed); staff run
    # sessions; every id below is unknown, so a caller the guard lets through gets the handler's 404
    ("GET", "/health/events"): Spec(None, 200),
    ("GET", "/health/events/export.csv"): Spec(None, 200),
    ("POST", "/health/events"): Spec(
        "health.manage",
        201,
        json=lambda w: {
            "title": "eスポーツ",
            "venue": "プラザ",
            "starts_at": "2027-01-16T10:00:00+09:00",
            "ends_at": "2027-01-16T12:00:00+09:00",
            "capacity": 20,
        },
    ),
    ("GET", "/health/events/{event_id:uuid}/registrations"): Spec(
        "health.manage", 404, path=lambda w: f"/health/events/{uuid.uuid4()}/registrations"
    ),
    ("POST", "/health/events/{event_id:uuid}/registrations"): Spec(
        "health.participate",
        404,
        path=lambda w: f"/health/events/{uuid.uuid4()}/registrations",
        json=lambda w: {"person_id": str(uuid.uuid4())},
        answer=_person_404,
    ),
    ("POST", "/health/events/{event_id:uuid}/checkins"): Spec(
        "health.manage",
        404,
        path=lambda w: f"/health/events/{uuid.uuid4()}/checkins",
        json=lambda w: {"scans": [{"nonce": uuid.uuid4().hex, "code": "AAAAAAAA"}]},
    ),
    ("POST", "/health/registrations/{registration_id:uuid}/cancel"): Spec(
        "health.participate", 404, path=lambda w: f"/health/registrations/{uuid.uuid4()}/cancel"
    ),
    ("PUT", "/health/me"): Spec("health.participate", 200, json=lambda w: {"birth_year": 1950}, answer=_me),
    ("GET", "/health/people/mine"): Spec("health.participate", 200, answer=_me),
    ("GET", "/health/people"): Spec(
        "health.manage", 200, path=lambda w: "/health/people?q=%E3%83%9F%E3%82%AD"
    ),
    ("POST", "/health/people"): Spec(
        "health.participate",
        201,
        json=lambda w: {"name": "三木 ウメ", "name_kana": "ミキ ウメ", "birth_year": 1940},
        answer=lambda caller, _c: 403 if caller.kind == "key" else 201,
    ),
    ("GET", "/health/people/{person_id:uuid}/card.svg"): Spec(
        "health.participate", 404, path=lambda w: f"/health/people/{uuid.uuid4()}/card.svg"
    ),
    ("GET", "/health/people/{person_id:uuid}/measures"): Spec(
        "health.participate", 404, path=lambda w: f"/health/people/{uuid.uuid4()}/measures"
    ),
    ("POST", "/health/redemptions"): Spec(
        "health.participate",
        404,
        json=lambda w: {"points": 1, "kind": "voucher", "person_id": str(uuid.uuid4())},
        headers=lambda w: {"idempotency-key": str(uuid.uuid4())},
    ),
    ("POST", "/health/consents"): Spec(
        "health.manage", 404, json=lambda w: {"person_id": str(uuid.uuid4()), "programme": "esports"}
    ),
    ("POST", "/health/consents/withdraw"): Spec(
        "health.participate", 404, json=lambda w: {"person_id": str(uuid.uuid4()), "programme": "esports"}
    ),
    ("POST", "/health/measures"): Spec(
        "health.manage",
        404,
        json=lambda w: {
            "person_id": str(uuid.uuid4()),
            "event_id": str(uuid.uuid4()),
            "kind": "grip_strength_kg",
            "phase": "before",
            "value": 20,
        },
    ),
    ("GET", "/health/stats"): Spec(
        "health.stats", 200, path=lambda w: "/health/stats?first=2026-04-01&last=2027-03-31"
    ),
    # notices
    ("GET", "/notices"): Spec(None, 200),
    ("GET", "/notices/{notice_id:uuid}"): Spec(None, 200, path=lambda w: f"/notices/{w.notice}"),
    ("GET", "/notices/all"): Spec("notices.read_all", 200),
    ("POST", "/notices"): Spec("notices.post", 201, json=lambda w: {"title": "お知らせ", "body": "本文"}),
    ("POST", "/notices/{notice_id:uuid}/withdraw"): Spec(
        "notices.post", 200, path=lambda w: f"/notices/{w.notice_to_withdraw}/withdraw"
    ),
    # the opinion box
    ("POST", "/opinion_box"): Spec(None, 201, json=lambda w: {"topic": "図書館", "body": "夜も開けてほしい"}),
    ("GET", "/opinion_box/{receipt:str}"): Spec(None, 200, path=lambda w: f"/opinion_box/{w.receipt}"),
    ("GET", "/opinion_box"): Spec("opinion_box.read", 200),
    ("POST", "/opinion_box/{receipt:str}/answer"): Spec(
        "opinion_box.answer", 200, path=lambda w: f"/opinion_box/{w.receipt}/answer"
    ),
}
"""Every non-OPTIONS route of the app. OPTIONS (made by Litestar for each path) is public and answers 204."""

COVERED_ELSEWHERE = ("/currency",)
"""Path prefixes whose routes have a matrix of their own, on these callers and this world
(``tests/integration/currency/test_currency_access.py``); this test leaves them to it."""


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    guard: str | None


def app_routes(app: Any) -> list[Route]:
    """Every (method, path) the app serves, with the identity guard it carries (at most one)."""
    found = []
    for route in app.routes:
        for method, handler in getattr(route, "route_handler_map", {}).items():
            handler = handler[0] if isinstance(handler, tuple) else handler
            guards = [g for layer in handler.ownership_layers for g in (layer.guards or [])]
            named = [g.permission for g in guards if isinstance(g, requires)]
            named += [AUTHENTICATED for g in guards if g is authenticated]
            assert len(named) <= 1, (route.path, method, named)
            found.append(Route(method, route.path, named[0] if named else None))
    return found


def url_for(route: Route, spec: Spec | None, world: World) -> str:
    path = spec.path(world) if spec and spec.path else route.path
    if path in PLATFORM_PATHS or path.startswith(PLATFORM_PREFIXES):
        return path  # served unbound, whoever calls
    return f"/m/{A}{path}"


def expected(platform: Platform, route: Route, spec: Spec, caller: Caller, credentials: Credentials) -> int:
    """The answer the guard's rule gives ``caller``, else the handler's own."""
    if route.guard is None:
        return spec.expected_answer(caller, credentials)
    if caller.kind == "anonymous":
        return 401
    if caller.town != A:
        return 403
    if route.guard == AUTHENTICATED:
        return spec.expected_answer(caller, credentials)
    permission = platform.permissions.get(route.guard)
    if caller.kind == "key":
        allowed = permission.scope is not None and permission.scope in credentials.scopes
    else:
        allowed = caller.operator or bool(caller.roles & set(permission.default_roles))
    return spec.expected_answer(caller, credentials) if allowed else 403


def _refuse_cookies(client: httpx.AsyncClient) -> httpx.AsyncClient:
    """Every request here carries exactly the cookies it is given; nothing a response set is sent back."""

    class RefuseAll(http.cookiejar.DefaultCookiePolicy):
        def set_ok(self, cookie: http.cookiejar.Cookie, request: Any) -> bool:
            return False

    client.cookies = http.cookiejar.CookieJar(policy=RefuseAll())  # type: ignore[assignment]
    return client


async def audit_actors(platform: Platform) -> set[str]:
    async with platform.sessions.tenant(platform.municipality(A).id) as session:
        return set(
            await session.scalars(select(AuditEvent.actor).where(AuditEvent.actor.startswith("account:")))
        )


@pytest.fixture(autouse=True)
def cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Logins verify against argon2 with tiny parameters: the answers are the same, in milliseconds."""
    monkeypatch.setattr(passwords, "HASHER", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))


@pytest.fixture
async def world(platform: Platform) -> World:
    return await World(platform).build()


@pytest.fixture
async def app_client(platform: Platform) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    app = create_app(platform=platform, run_jobs_in_process=False)
    async with lifespan_client(app) as client:
        yield app, _refuse_cookies(client)


async def call(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    credentials: Credentials,
    spec: Spec | None,
    world: World,
) -> httpx.Response:
    headers = dict(credentials.headers)
    cookies = dict(credentials.cookies)
    if method not in UNSAFE:
        headers.pop(CSRF_HEADER, None)
    if spec is not None and spec.headers:
        headers.update(spec.headers(world))
    if spec is not None and spec.cookies:
        cookies.update(spec.cookies(world))
    if cookies:
        headers["cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    body = spec.json(world) if spec is not None and spec.json else None
    return await client.request(method, url, headers=headers, json=body)


async def test_every_route_answers_every_caller_as_its_guard_says(
    world: World, app_client: tuple[Any, httpx.AsyncClient]
) -> None:
    app, client = app_client
    platform = world.platform
    routes = [r for r in app_routes(app) if not r.path.startswith(COVERED_ELSEWHERE)]
    served = {(r.method, r.path) for r in routes if r.method != "OPTIONS"}
    assert served == set(SPECS), (
        f"routes without a spec here: {sorted(served - set(SPECS))}; specs of no route: {sorted(set(SPECS) - served)}"
    )
    guarded = [r for r in routes if r.guard not in (None, AUTHENTICATED)]
    assert {r.guard for r in guarded} >= {
        "notices.post",
        "notices.read_all",
        "opinion_box.read",
        "opinion_box.answer",
    }

    wrong: list[str] = []
    cells = 0
    for route in sorted(routes, key=lambda r: (r.path, r.method)):
        spec = SPECS.get((route.method, route.path))
        if route.method == "OPTIONS":  # Litestar's own, for each path: public, and at the same real path
            same_path = next(s for (m, p), s in SPECS.items() if p == route.path)
            spec = Spec(None, 204, path=same_path.path)
        assert spec is not None
        if route.guard != spec.guard:
            wrong.append(
                f"{route.method} {route.path}: guard is {route.guard!r}, the spec says {spec.guard!r}"
            )
            continue
        scope = (
            platform.permissions.get(route.guard).scope if route.guard not in (None, AUTHENTICATED) else None
        )
        for caller in CALLERS:
            credentials = await world.credentials(caller, scope)
            response = await call(client, route.method, url_for(route, spec, world), credentials, spec, world)
            want = expected(platform, route, spec, caller, credentials)
            cells += 1
            if response.status_code != want:
                wrong.append(
                    f"{route.method} {route.path} as {caller.name}: {response.status_code}, expected {want}"
                    f" ({response.text[:160]})"
                )
    assert not wrong, f"{len(wrong)} of {cells} cells wrong:\n" + "\n".join(wrong)
    assert cells == len(routes) * len(CALLERS)


async def test_the_guarded_routes_do_what_they_say(
    world: World, app_client: tuple[Any, httpx.AsyncClient]
) -> None:
    _, client = app_client
    platform = world.platform
    staff = await world.credentials(next(c for c in CALLERS if c.name == f"{A} staff"), None)
    base = f"/m/{A}"

    def auth(extra: dict[str, str] | None = None) -> dict[str, str]:
        return {
            **staff.headers,
            "cookie": f"{SESSION_COOKIE}={staff.cookies[SESSION_COOKIE]}",
            **(extra or {}),
        }

    scheduled = await client.post(
        f"{base}/notices/",
        headers=auth(),
        json={"title": "来月の予定", "body": "本文", "published_at": "2099-01-01T09:00:00+09:00"},
    )
    assert scheduled.status_code == 201, scheduled.text
    new_id = scheduled.json()["id"]
    public = {n["id"] for n in (await client.get(f"{base}/notices/")).json()["items"]}
    every = {n["id"]: n for n in (await client.get(f"{base}/notices/all", headers=auth())).json()}
    assert new_id not in public and new_id in every  # scheduled: only staff see it yet
    assert world.notice in public

    withdrawn = await client.post(f"{base}/notices/{world.notice}/withdraw", headers=auth())
    assert withdrawn.status_code == 200 and withdrawn.json()["withdrawn_at"] is not None
    assert (await client.get(f"{base}/notices/{world.notice}")).status_code == 404
    every = {n["id"]: n for n in (await client.get(f"{base}/notices/all", headers=auth())).json()}
    assert every[world.notice]["withdrawn_at"] is not None
    bad = await client.post(f"{base}/notices/", headers=auth(), json={"title": "", "body": "b"})
    assert bad.status_code == 422 and "title" in bad.json()["detail"]
    missing = await client.post(f"{base}/notices/{uuid.uuid4()}/withdraw", headers=auth())
    assert missing.status_code == 404

    opinions = (await client.get(f"{base}/opinion_box/", headers=auth())).json()
    assert [(o["receipt"], o["status"], o["body"]) for o in opinions] == [(world.receipt, "received", "b")]
    answered = await client.post(f"{base}/opinion_box/{world.receipt}/answer", headers=auth())
    assert answered.status_code == 200 and answered.json()["status"] == "answered"
    assert (await client.get(f"{base}/opinion_box/{world.receipt}")).json()["status"] == "answered"
    assert (await client.post(f"{base}/opinion_box/NOSUCHRECEIPT/answer", headers=auth())).status_code == 404
    # Each change is in the audit log, by the person who made it.
    async with platform.sessions.tenant(platform.municipality(A).id) as session:
        events = await session.scalars(select(AuditEvent).where(AuditEvent.actor.startswith("account:")))
        trail = sorted((e.action, e.target_id) for e in events)
    assert trail == sorted(
        [
            ("notices.posted", new_id),
            ("notices.withdrawn", world.notice),
            ("opinion_box.answered", world.receipt),
        ]
    )
    assert await audit_actors(platform) == {f"account:{world.accounts[f'{A} staff']}"}

    # The municipality gives residents more: the running app sees it without a restart.
    resident = await world.credentials(next(c for c in CALLERS if c.name == f"{A} resident"), None)
    as_resident = {"cookie": f"{SESSION_COOKIE}={resident.cookies[SESSION_COOKIE]}"}
    assert (await client.get(f"{base}/opinion_box/", headers=as_resident)).status_code == 403
    await accounts.grant_permission(platform, platform.municipality(A), "resident", "opinion_box.read")
    assert (await client.get(f"{base}/opinion_box/", headers=as_resident)).status_code == 200


async def test_a_session_without_its_csrf_token_cannot_change_anything(
    world: World, app_client: tuple[Any, httpx.AsyncClient]
) -> None:
    _, client = app_client
    staff = await world.credentials(next(c for c in CALLERS if c.name == f"{A} staff"), None)
    cookie = {"cookie": f"{SESSION_COOKIE}={staff.cookies[SESSION_COOKIE]}"}

    for headers in (cookie, {**cookie, CSRF_HEADER: "not-the-token"}):
        refused = await client.post(f"/m/{A}/notices/", headers=headers, json={"title": "t", "body": "b"})
        assert refused.status_code == 403, refused.text
    async with world.platform.sessions.tenant(world.platform.municipality(A).id) as session:
        assert len(await notice_services.list_all(session)) == 2  # the two the world made


# --- the rule itself, for any roles, scopes, grants and municipalities --------------------------------------


@pytest.fixture(scope="module")
def rule_platform() -> Platform:
    """A platform with the real declared permissions; its snapshot is set per example (no database is used)."""
    return create_platform(Settings(database_url="sqlite+aiosqlite:///:memory:", environment="test"))


def town(municipality_id: int) -> Municipality:
    return Municipality(
        id=municipality_id,
        slug=f"town{municipality_id}",
        code="000000",
        name="町",
        name_en="Town",
        hosts=(),
        timezone="Asia/Tokyo",
        locale="ja",
    )


role_sets = st.frozensets(st.sampled_from(ROLES))
TOWNS = (1, 2, 3)


@st.composite
def cases(draw: st.DrawFn, permissions: tuple[str, ...], scopes: tuple[str, ...]) -> dict[str, Any]:
    kind = draw(st.sampled_from(["session", "token", "api_key"]))
    return {
        "permission": draw(st.sampled_from(permissions)),
        "at": draw(st.sampled_from(TOWNS)),
        "issued_in": draw(st.sampled_from(TOWNS)),
        "kind": kind,
        "roles": draw(role_sets) if kind != "api_key" else frozenset(),
        "operator": draw(st.booleans()) if kind != "api_key" else False,
        "scopes": None if kind == "session" else draw(st.frozensets(st.sampled_from(scopes))),
        "grants": draw(
            st.dictionaries(
                st.sampled_from(TOWNS),
                st.dictionaries(st.sampled_from(ROLES), st.frozensets(st.sampled_from(permissions))),
            )
        ),
    }


def model(declared: Any, case: dict[str, Any]) -> bool:
    """The rule, stated plainly: the credential's own municipality; then its scopes; then who holds it there."""
    if case["issued_in"] != case["at"]:
        return False
    if case["scopes"] is not None and declared.scope not in case["scopes"]:
        return False  # a permission without a scope (None) is in no set of scopes
    if case["kind"] == "api_key" or case["operator"]:
        return True
    granted_here = case["grants"].get(case["at"], {})
    holders = set(declared.default_roles) | {
        role for role, held in granted_here.items() if declared.name in held
    }
    return bool(case["roles"] & holders)


def test_is_allowed_agrees_with_the_model(rule_platform: Platform) -> None:
    permissions = tuple(sorted(rule_platform.permissions.permissions))
    scopes = tuple(sorted(rule_platform.permissions.scopes))
    assert {"core.manage_users", "notices.post", "opinion_box.read"} <= set(permissions)
    base = TenantSnapshot.empty()

    @settings(max_examples=400, deadline=None)
    @given(case=cases(permissions, scopes))
    def check(case: dict[str, Any]) -> None:
        rule_platform.snapshot = msgspec.structs.replace(base, grants=case["grants"])
        principal = Principal(
            kind=case["kind"],
            account_id=None if case["kind"] == "api_key" else uuid.uuid4(),
            api_key_id=uuid.uuid4() if case["kind"] == "api_key" else None,
            municipality_id=case["issued_in"],
            roles=case["roles"],
            scopes=case["scopes"],
            is_operator=case["operator"],
        )
        declared = rule_platform.permissions.get(case["permission"])
        assert is_allowed(rule_platform, principal, town(case["at"]), case["permission"]) == model(
            declared, case
        )

    check()
