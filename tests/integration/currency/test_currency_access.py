"""Who may call each currency route, for every kind of caller of the general access matrix
(``tests/integration/test_access_matrix.py``, whose callers, world and rule this reuses): anonymous, residents,
staff, administrators, operators and API keys of Miki, and the same from Takamatsu calling at Miki.

The specs below say what each handler answers a caller its guard lets through: a wallet belongs to a person (an
API key gets 403), a shop's till is its members' and the currency managers' (403 for anyone else)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from plugins.currency import services
from tests.integration.currency.helpers import fixed_code, make_shop, tenant
from tests.integration.test_access_matrix import (  # noqa: F401 - fixtures
    CALLERS,
    Caller,
    Credentials,
    Spec,
    World,
    app_client,
    app_routes,
    call,
    cheap_hashing,
    expected,
    url_for,
    world,
)

A = "miki"


def _person(caller: Caller, _credentials: Credentials) -> int:
    return 403 if caller.kind == "key" else 200


def _manager(ok: int) -> Any:
    """Till routes: the shop's members (none here) and holders of currency.manage (administrators, operators)."""

    def answer(caller: Caller, _credentials: Credentials) -> int:
        return ok if caller.kind == "session" and (caller.operator or "admin" in caller.roles) else 403

    return answer


def _key() -> dict[str, str]:
    return {"idempotency-key": str(uuid.uuid4())}


class CurrencyWorld:
    shop = closing = resident = ""
    code = ""


SHOP = CurrencyWorld()

SPECS: dict[tuple[str, str], Spec] = {
    ("GET", "/currency/wallet"): Spec("currency.pay", 200, answer=_person),
    ("GET", "/currency/wallet/history"): Spec(
        "currency.pay", 200, path=lambda w: "/currency/wallet/history?currency=MIKI", answer=_person
    ),
    ("GET", "/currency/wallet/profile"): Spec("currency.pay", 200, answer=_person),
    ("PUT", "/currency/wallet/profile"): Spec(
        "currency.pay", 200, json=lambda w: {"birth_year": 1980}, answer=_person
    ),
    ("POST", "/currency/payments"): Spec(
        "currency.pay",
        409,  # nobody here holds MIKI
        json=lambda w: {"code": SHOP.code, "amount": 100},
        headers=lambda w: _key(),
        answer=lambda c, cr: 403 if c.kind == "key" else 409,
    ),
    ("GET", "/currency/merchants"): Spec(None, 200),
    ("GET", "/currency/merchants/{merchant_id:uuid}/code"): Spec(
        "currency.accept", 200, path=lambda w: f"/currency/merchants/{SHOP.shop}/code", answer=_manager(200)
    ),
    ("POST", "/currency/merchants/{merchant_id:uuid}/sales"): Spec(
        "currency.accept",
        201,
        path=lambda w: f"/currency/merchants/{SHOP.shop}/sales",
        json=lambda w: {"amount": 100},
        answer=_manager(201),
    ),
    ("POST", "/currency/merchants/{merchant_id:uuid}/refunds"): Spec(
        "currency.accept",
        404,  # no such payment
        path=lambda w: f"/currency/merchants/{SHOP.shop}/refunds",
        json=lambda w: {"payment_id": str(uuid.uuid4()), "amount": 1},
        headers=lambda w: _key(),
        answer=_manager(404),
    ),
    ("GET", "/currency/merchants/{merchant_id:uuid}/statement"): Spec(
        "currency.accept",
        200,
        path=lambda w: (
            f"/currency/merchants/{SHOP.shop}/statement?currency=MIKI&start=2026-01-01&end=2026-01-31"
        ),
        answer=_manager(200),
    ),
    ("GET", "/currency/codes/image"): Spec(
        "currency.accept", 200, path=lambda w: f"/currency/codes/image?code={SHOP.code}"
    ),
    ("POST", "/currency/issues"): Spec(
        "currency.issue",
        201,
        json=lambda w: {"account_id": SHOP.resident, "currency": "MIKI", "purchased": 1},
        headers=lambda w: _key(),
    ),
    ("POST", "/currency/merchants"): Spec(
        "currency.manage", 201, json=lambda w: {"name": "八百屋", "category": "food"}
    ),
    ("POST", "/currency/merchants/{merchant_id:uuid}/members"): Spec(
        "currency.manage",
        200,
        path=lambda w: f"/currency/merchants/{SHOP.closing}/members",
        json=lambda w: {"account_id": SHOP.resident},
    ),
    ("POST", "/currency/merchants/{merchant_id:uuid}/close"): Spec(
        "currency.manage", 200, path=lambda w: f"/currency/merchants/{SHOP.closing}/close"
    ),
    ("POST", "/currency/redemptions"): Spec(
        "currency.manage",
        409,  # the shop holds nothing
        json=lambda w: {"merchant_id": SHOP.shop, "currency": "MIKI"},
        headers=lambda w: _key(),
    ),
    ("POST", "/currency/transfers/{transfer_id:uuid}/reverse"): Spec(
        "currency.manage",
        404,
        path=lambda w: f"/currency/transfers/{uuid.uuid4()}/reverse",
        headers=lambda w: _key(),
    ),
    ("GET", "/currency/statements"): Spec(
        "currency.manage",
        200,
        path=lambda w: "/currency/statements?currency=MIKI&start=2026-01-01&end=2026-01-31",
    ),
    ("GET", "/currency/reports/outstanding"): Spec(
        "currency.manage", 200, path=lambda w: "/currency/reports/outstanding?currency=MIKI&date=2025-03-31"
    ),
    ("GET", "/currency/verify"): Spec("currency.manage", 200),
    ("GET", "/currency/stats"): Spec(
        "currency.analytics", 200, path=lambda w: "/currency/stats?currency=MIKI&start=2025-W01&end=2025-W02"
    ),
}


async def test_every_currency_route_answers_every_caller_as_its_guard_says(
    world: World,  # noqa: F811 - the fixture imported above
    app_client: tuple[Any, httpx.AsyncClient],  # noqa: F811
) -> None:
    app, client = app_client
    platform = world.platform
    SHOP.shop = str(await make_shop(platform))
    SHOP.closing = str(await make_shop(platform, name="閉店"))
    SHOP.resident = str(world.accounts[f"{A} resident"])
    SHOP.code = fixed_code(platform, uuid.UUID(SHOP.shop))
    routes = [r for r in app_routes(app) if r.path.startswith("/currency") and r.method != "OPTIONS"]
    assert {(r.method, r.path) for r in routes} == set(SPECS)

    wrong: list[str] = []
    for route in sorted(routes, key=lambda r: (r.path, r.method)):
        spec = SPECS[(route.method, route.path)]
        if route.guard != spec.guard:
            wrong.append(
                f"{route.method} {route.path}: guard is {route.guard!r}, the spec says {spec.guard!r}"
            )
            continue
        scope = platform.permissions.get(route.guard).scope if route.guard else None
        for caller in CALLERS:
            credentials = await world.credentials(caller, scope)
            response = await call(client, route.method, url_for(route, spec, world), credentials, spec, world)
            want = expected(platform, route, spec, caller, credentials)
            if response.status_code != want:
                wrong.append(
                    f"{route.method} {route.path} as {caller.name}: {response.status_code}, expected {want}"
                    f" ({response.text[:160]})"
                )
    assert not wrong, f"{len(wrong)} cells wrong:\n" + "\n".join(wrong)
    async with tenant(platform) as session:
        assert (await services.verify(session)).ok
