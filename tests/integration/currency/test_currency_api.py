"""The HTTP API: paying with fixed and per-sale codes, Idempotency-Key, QR images, refunds by the shop's staff,
staff issuing and settling, problem+json for everything refused."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import func, select

from core.platform import Platform
from plugins.currency.models import Transfer
from tests.integration.currency.helpers import (
    balance_of,
    fixed_code,
    issue,
    make_person,
    make_shop,
    signed_in,
    tenant,
    verified,
)

BASE = "/m/miki/currency"


def keyed(headers: dict[str, str], key: str | None = None) -> dict[str, str]:
    return {**headers, "idempotency-key": key or str(uuid.uuid4())}


async def payments(platform: Platform) -> int:
    async with tenant(platform) as session:
        return (
            await session.scalar(select(func.count()).select_from(Transfer).where(Transfer.kind == "payment"))
            or 0
        )


async def test_paying_with_a_fixed_code_and_the_idempotency_key_rules(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    payer, shop = await make_person(platform), await make_shop(platform)
    await issue(platform, payer, 3_000)
    me = await signed_in(platform, payer)
    body = {"code": fixed_code(platform, shop), "amount": 500}

    missing = await client.post(f"{BASE}/payments", json=body, headers=me)
    assert missing.status_code == 422
    assert missing.headers["content-type"].startswith("application/problem+json")
    assert "Idempotency-Key" in missing.json()["detail"]

    key = str(uuid.uuid4())
    first = await client.post(f"{BASE}/payments", json=body, headers=keyed(me, key))
    assert first.status_code == 201, first.text
    assert first.json()["balance"] == 2_500 and first.json()["merchant_name"] == "三木うどん"
    again = await client.post(f"{BASE}/payments", json=body, headers=keyed(me, key))
    assert (again.status_code, again.json(), again.headers["idempotent-replayed"]) == (
        201,
        first.json(),
        "true",
    )
    other = await client.post(f"{BASE}/payments", json={**body, "amount": 501}, headers=keyed(me, key))
    assert other.status_code == 422 and "different request" in other.json()["detail"]
    assert await payments(platform) == 1 and await balance_of(platform, "resident", payer) == 2_500

    wallet = (await client.get(f"{BASE}/wallet", headers=me)).json()
    assert wallet["currencies"][0]["balance"] == 2_500 and wallet["currencies"][0]["currency"] == "MIKI"
    history = (await client.get(f"{BASE}/wallet/history", params={"currency": "MIKI"}, headers=me)).json()
    assert [(h["kind"], h["amount"]) for h in history] == [("payment", -500), ("issue", 3_000)]

    # Refused payments change nothing and say why, as problem+json.
    for wrong, status, words in (
        ({**body, "amount": 10_000}, 409, "holds 2500"),
        ({**body, "amount": 1.5}, 400, None),
        ({"code": body["code"][:-2] + "xx", "amount": 1}, 422, "signature"),
        ({"code": body["code"]}, 422, "amount: required"),
    ):
        response = await client.post(f"{BASE}/payments", json=wrong, headers=keyed(me))
        assert response.status_code == status, response.text
        if words:
            assert words in response.json()["detail"]
    assert await payments(platform) == 1 and await balance_of(platform, "resident", payer) == 2_500


async def test_a_per_sale_code_fixes_amount_and_expiry_and_is_paid_once(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    payer, other, clerk, shop = (
        await make_person(platform),
        await make_person(platform),
        await make_person(platform),
        await make_shop(platform),
    )
    await issue(platform, payer, 3_000)
    await issue(platform, other, 3_000)
    async with tenant(platform) as session:
        from plugins.currency import services

        await services.add_member(session, shop, clerk, actor="cli")
    till = await signed_in(platform, clerk)
    outsider = await signed_in(platform, other)

    refused = await client.post(f"{BASE}/merchants/{shop}/sales", json={"amount": 800}, headers=outsider)
    assert refused.status_code == 403
    sale = await client.post(
        f"{BASE}/merchants/{shop}/sales", json={"amount": 800, "ttl_seconds": 120}, headers=till
    )
    assert sale.status_code == 201, sale.text
    code = sale.json()["code"]

    png = await client.get(f"{BASE}/codes/image", params={"code": code, "format": "png"}, headers=till)
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG\r\n\x1a\n")
    svg = await client.get(f"{BASE}/merchants/{shop}/code", params={"format": "svg"}, headers=till)
    assert (
        svg.status_code == 200
        and svg.headers["content-type"].startswith("image/svg+xml")
        and b"<svg" in svg.content
    )
    forged = await client.get(
        f"{BASE}/codes/image", params={"code": code.replace("TSGC1.", "TSGC1.e", 1)}, headers=till
    )
    assert forged.status_code == 422

    me = await signed_in(platform, payer)
    wrong_amount = await client.post(
        f"{BASE}/payments", json={"code": code, "amount": 700}, headers=keyed(me)
    )
    assert wrong_amount.status_code == 422 and "exactly 800" in wrong_amount.json()["detail"]
    paid = await client.post(f"{BASE}/payments", json={"code": code}, headers=keyed(me))
    assert paid.status_code == 201 and paid.json()["amount"] == 800
    twice = await client.post(f"{BASE}/payments", json={"code": code}, headers=keyed(outsider))
    assert twice.status_code == 409 and "paid already" in twice.json()["detail"]

    payment_id = paid.json()["id"]
    too_much = await client.post(
        f"{BASE}/merchants/{shop}/refunds",
        json={"payment_id": payment_id, "amount": 801},
        headers=keyed(till),
    )
    assert too_much.status_code == 422 and "at most 800" in too_much.json()["detail"]
    not_staff = await client.post(
        f"{BASE}/merchants/{shop}/refunds",
        json={"payment_id": payment_id, "amount": 100},
        headers=keyed(outsider),
    )
    assert not_staff.status_code == 403
    back = await client.post(
        f"{BASE}/merchants/{shop}/refunds",
        json={"payment_id": payment_id, "amount": 300},
        headers=keyed(till),
    )
    assert back.status_code == 201, back.text
    assert await balance_of(platform, "resident", payer) == 2_500
    assert await balance_of(platform, "merchant", shop) == 500
    assert (await verified(platform)).ok


async def test_staff_issue_register_and_settle(platform: Platform, client: httpx.AsyncClient) -> None:
    staff, admin, resident = (
        await make_person(platform, roles=("staff",)),
        await make_person(platform, roles=("admin",)),
        await make_person(platform),
    )
    as_staff, as_admin, as_resident = (
        await signed_in(platform, staff),
        await signed_in(platform, admin),
        await signed_in(platform, resident),
    )
    top_up = {"account_id": str(resident), "currency": "MIKI", "purchased": 10_000, "bonus": 2_000}
    assert (await client.post(f"{BASE}/issues", json=top_up, headers=keyed(as_resident))).status_code == 403
    issued = await client.post(f"{BASE}/issues", json=top_up, headers=keyed(as_staff))
    assert issued.status_code == 201 and issued.json()["balance"] == 12_000
    unknown = await client.post(f"{BASE}/issues", json={**top_up, "currency": "YEN"}, headers=keyed(as_staff))
    assert unknown.status_code == 422 and "runs MIKI" in unknown.json()["detail"]

    shop = await client.post(
        f"{BASE}/merchants", json={"name": "三木の八百屋", "category": "food"}, headers=as_admin
    )
    assert shop.status_code == 201, shop.text
    shop_id = shop.json()["id"]
    assert [m["id"] for m in (await client.get(f"{BASE}/merchants")).json()] == [shop_id]
    bad_category = await client.post(
        f"{BASE}/merchants", json={"name": "x", "category": "casino"}, headers=as_admin
    )
    assert bad_category.status_code == 422 and "category" in bad_category.json()["detail"]

    paid = await client.post(
        f"{BASE}/payments",
        json={"code": fixed_code(platform, uuid.UUID(shop_id)), "amount": 4_000},
        headers=keyed(as_resident),
    )
    assert paid.status_code == 201
    settled = await client.post(
        f"{BASE}/redemptions", json={"merchant_id": shop_id, "currency": "MIKI"}, headers=keyed(as_admin)
    )
    assert settled.status_code == 201 and settled.json()["amount"] == 4_000
    verify = await client.get(f"{BASE}/verify", headers=as_admin)
    assert verify.json()["ok"] is True
    assert verify.json()["currencies"] == [
        {"currency": "MIKI", "issued": 12_000, "redeemed": 4_000, "expired": 0, "held": 8_000}
    ]
    reversal = await client.post(f"{BASE}/transfers/{settled.json()['id']}/reverse", headers=keyed(as_admin))
    assert reversal.status_code == 201 and await balance_of(platform, "merchant", uuid.UUID(shop_id)) == 4_000


async def test_routes_are_not_there_where_the_plugin_is_off(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    resident = await make_person(platform, "takamatsu")
    headers = await signed_in(platform, resident, "takamatsu")
    assert (await client.get("/m/takamatsu/currency/wallet", headers=headers)).status_code == 404
