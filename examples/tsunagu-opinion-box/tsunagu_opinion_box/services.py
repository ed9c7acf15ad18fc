"""Receiving opinions and tracking them. Sessions passed in are bound to one municipality.

Receiving and answering are recorded in the municipality's audit log (:func:`core.audit.record`), in the same
transaction, as done by ``actor``; the text of an opinion is not copied there.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.audit import record
from core.db import utcnow
from core.exceptions import InvalidInput, NotFound
from tsunagu_opinion_box.config import OpinionBoxSettings
from tsunagu_opinion_box.models import Opinion
from tsunagu_opinion_box.schemas import OpinionReceipt, OpinionRecord, OpinionSubmit

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U to misread on paper


def new_receipt() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(10))


def to_receipt(opinion: Opinion) -> OpinionReceipt:
    return OpinionReceipt(
        receipt=opinion.receipt,
        status=opinion.status,
        received_at=opinion.created_at,
        reply_due=opinion.reply_due,
    )


def to_record(opinion: Opinion) -> OpinionRecord:
    return OpinionRecord(
        receipt=opinion.receipt,
        topic=opinion.topic,
        body=opinion.body,
        status=opinion.status,
        received_at=opinion.created_at,
        reply_due=opinion.reply_due,
        answered_at=opinion.answered_at,
    )


async def submit(
    session: AsyncSession, settings: OpinionBoxSettings, data: OpinionSubmit, *, actor: str = "anonymous"
) -> OpinionReceipt:
    """Store an opinion. :raises InvalidInput: naming the field and the rule."""
    topic, body = data.topic.strip(), data.body.strip()
    if not 1 <= len(topic) <= 100:
        raise InvalidInput(f"topic: must be 1 to 100 characters, got {len(topic)}")
    if not 1 <= len(body) <= settings.max_length:
        raise InvalidInput(f"body: must be 1 to {settings.max_length} characters, got {len(body)}")
    now = utcnow()
    opinion = Opinion(
        receipt=new_receipt(),
        topic=topic,
        body=body,
        status="received",
        created_at=now,
        reply_due=now + timedelta(days=settings.reply_days),
    )
    session.add(opinion)
    await session.flush()
    record(
        session, actor=actor, action="opinion_box.received", target_type="opinion", target_id=opinion.receipt
    )
    return to_receipt(opinion)


async def find(session: AsyncSession, receipt: str) -> Opinion:
    """:raises NotFound: if this municipality has no opinion with that receipt."""
    opinion = await session.scalar(select(Opinion).where(Opinion.receipt == receipt.strip().upper()))
    if opinion is None:
        raise NotFound(f"no opinion with receipt {receipt!r}")
    return opinion


async def answer(session: AsyncSession, receipt: str, *, actor: str = "cli") -> Opinion:
    """Mark an opinion answered (once). :raises NotFound: if this municipality has no such receipt."""
    opinion = await find(session, receipt)
    if opinion.status != "answered":
        opinion.status = "answered"
        opinion.answered_at = utcnow()
        record(
            session,
            actor=actor,
            action="opinion_box.answered",
            target_type="opinion",
            target_id=opinion.receipt,
        )
    return opinion


async def list_all(session: AsyncSession) -> list[Opinion]:
    return list(await session.scalars(select(Opinion).order_by(Opinion.created_at)))
