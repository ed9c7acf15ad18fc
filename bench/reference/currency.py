"""Reference payment: an idempotent double-entry transfer from a payer's account to a shop's.

One transaction: the ``Idempotency-Key`` looked up (a repeat gets the first answer again and moves nothing),
both accounts locked in id order, the payer's balance checked, both balances updated, the transfer and its two
entries inserted. No municipality, person, signed code, limits, lots, expiry or audit event.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec
from litestar import Request, Response, post
from litestar.datastructures import State
from litestar.exceptions import NotFoundException, ValidationException
from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    LargeBinary,
    MetaData,
    String,
    Table,
    Uuid,
    insert,
    select,
    update,
)

from core.db import UTCDateTime

METADATA = MetaData()
accounts = Table(
    "accounts",
    METADATA,
    Column("id", Uuid, primary_key=True),
    Column("balance", BigInteger, nullable=False),
)
transfers = Table(
    "transfers",
    METADATA,
    Column("id", Uuid, primary_key=True),
    Column("idempotency_key", String(200), nullable=False, unique=True),
    Column("response", LargeBinary, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)
entries = Table(
    "entries",
    METADATA,
    Column("id", Uuid, primary_key=True),
    Column("transfer_id", Uuid, ForeignKey("transfers.id"), nullable=False),
    Column("account_id", Uuid, ForeignKey("accounts.id"), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Index("ix_entries_account", "account_id"),
)


class PayIn(msgspec.Struct, kw_only=True, frozen=True):
    payer: uuid.UUID
    shop: uuid.UUID
    amount: int


class PaymentOut(msgspec.Struct, kw_only=True, frozen=True):
    transfer_id: uuid.UUID
    amount: int
    balance: int
    created_at: datetime


def _json(body: bytes, status: int, replayed: bool = False) -> Response[bytes]:
    headers = {"idempotent-replayed": "true"} if replayed else {}
    return Response(body, status_code=status, media_type="application/json", headers=headers)


@post("/currency/payments")
async def pay(request: Request[Any, Any, Any], state: State, data: PayIn) -> Response[bytes]:
    key = request.headers.get("idempotency-key", "").strip()
    if not key or len(key) > 200:
        raise ValidationException("send an Idempotency-Key header (1 to 200 characters)")
    if not 0 < data.amount <= 50_000 or data.payer == data.shop:
        raise ValidationException("amount: between 1 and 50000, to another account")
    async with state.engine.begin() as conn:
        first = await conn.scalar(select(transfers.c.response).where(transfers.c.idempotency_key == key))
        if first is not None:
            return _json(first, 201, replayed=True)
        locked = {
            row.id: row.balance
            for row in await conn.execute(
                select(accounts.c.id, accounts.c.balance)
                .where(accounts.c.id.in_(sorted((data.payer, data.shop))))
                .order_by(accounts.c.id)
                .with_for_update()
            )
        }
        if len(locked) != 2:
            raise NotFoundException("no such account")
        if locked[data.payer] < data.amount:
            raise ValidationException("the balance is too low")
        for account, change in ((data.payer, -data.amount), (data.shop, data.amount)):
            await conn.execute(
                update(accounts).where(accounts.c.id == account).values(balance=accounts.c.balance + change)
            )
        transfer, now = uuid.uuid4(), datetime.now(UTC)
        body = msgspec.json.encode(
            PaymentOut(
                transfer_id=transfer,
                amount=data.amount,
                balance=locked[data.payer] - data.amount,
                created_at=now,
            )  # fmt: skip
        )
        await conn.execute(
            insert(transfers), {"id": transfer, "idempotency_key": key, "response": body, "created_at": now}
        )
        await conn.execute(
            insert(entries),
            [
                {
                    "id": uuid.uuid4(),
                    "transfer_id": transfer,
                    "account_id": data.payer,
                    "amount": -data.amount,
                },
                {"id": uuid.uuid4(), "transfer_id": transfer, "account_id": data.shop, "amount": data.amount},
            ],
        )
    return _json(body, 201)


ROUTES = [pay]
