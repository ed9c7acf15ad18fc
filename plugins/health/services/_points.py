"""Health points: paid by the municipality's rules on attendance, capped per day and per fiscal year, expiring
on 31 March; redeemed into the regional currency where ``currency`` is enabled, else for vouchers.

Once-only is the database's job: ``uq_health_awards_once`` refuses a second (person, session, rule), so a retried
or concurrent scan pays nothing twice. The caps are counted with the person's row locked (``FOR UPDATE`` on
PostgreSQL; SQLite serialises write transactions), so two sessions scanned at once cannot both pass a cap.
"""

from __future__ import annotations

import secrets
import uuid

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from core.audit import record
from core.exceptions import InvalidInput
from plugins.health.models import Award, Event, Person, Redemption
from plugins.health.schemas import Actor, RedemptionOut
from plugins.health.services._context import HealthContext, fiscal_year
from plugins.health.services._events import age_in
from plugins.health.services._tokens import CODE_ALPHABET

TRIGGER_OF_KIND = {"event": "attendance", "checkup": "checkup"}


async def _lock(session: AsyncSession, person: Person) -> None:
    await session.scalar(select(Person.id).where(Person.id == person.id).with_for_update())


async def _earned(session: AsyncSession, person_id: uuid.UUID, *conditions: object) -> int:
    total = await session.scalar(
        select(func.coalesce(func.sum(Award.points), 0)).where(Award.person_id == person_id, *conditions)
    )
    return int(total or 0)


async def award_attendance(session: AsyncSession, ctx: HealthContext, person: Person, event: Event) -> int:
    """Pay every rule that matches this attendance, within the caps; the points paid now (0 on a repeat)."""
    await _lock(session, person)
    day = ctx.local_date(event.starts_at)
    year = fiscal_year(day)
    age = age_in(person, event, ctx)
    paid = 0
    for rule in ctx.settings.rules:
        if rule.trigger != TRIGGER_OF_KIND.get(event.kind):
            continue
        if (rule.min_age is not None and age < rule.min_age) or (
            rule.max_age is not None and age > rule.max_age
        ):
            continue
        daily = ctx.settings.daily_cap - await _earned(session, person.id, Award.earned_on == day)
        yearly = ctx.settings.yearly_cap - await _earned(session, person.id, Award.fiscal_year == year)
        points = min(rule.points, daily, yearly)
        if points <= 0:
            continue
        award = Award(
            id=uuid.uuid4(),
            person_id=person.id,
            event_id=event.id,
            rule=rule.name,
            points=points,
            earned_on=day,
            fiscal_year=year,
        )
        try:
            async with session.begin_nested():
                session.add(award)
        except IntegrityError:
            continue  # paid before: a retry or a concurrent scan
        record(
            session,
            actor="plugin:health",
            action="health.points_awarded",
            target_type="health_award",
            target_id=award.id,
            payload={"event_id": event.id, "rule": rule.name, "points": points},
        )
        paid += points
    return paid


async def balance(session: AsyncSession, ctx: HealthContext, person_id: uuid.UUID) -> int:
    """This fiscal year's points less this fiscal year's redemptions; earlier years' points have expired."""
    year = fiscal_year(ctx.local_date(ctx.current()))
    earned = await _earned(session, person_id, Award.fiscal_year == year)
    spent = await session.scalar(
        select(func.coalesce(func.sum(Redemption.points), 0)).where(
            Redemption.person_id == person_id, Redemption.fiscal_year == year
        )
    )
    return earned - int(spent or 0)


def _out(redemption: Redemption, ctx: HealthContext, *, created: bool) -> RedemptionOut:
    return RedemptionOut(
        id=redemption.id,
        person_id=redemption.person_id,
        kind=redemption.kind,
        points=redemption.points,
        voucher_code=redemption.voucher_code,
        currency_amount=redemption.points * ctx.settings.currency_per_point
        if redemption.kind == "currency"
        else None,
        created=created,
    )


async def redeem(
    session: AsyncSession,
    ctx: HealthContext,
    actor: Actor,
    person: Person,
    *,
    points: int,
    kind: str,
    key: str,
) -> RedemptionOut:
    """Spend points, once per idempotency ``key``: the same key again returns the first redemption.

    :raises InvalidInput: a bad amount or key, not enough points, the key reused for another redemption,
        ``currency`` asked where the currency is not enabled or for someone without an account.
    """
    if not 1 <= len(key) <= 100 or not key.isprintable():
        raise InvalidInput("idempotency-key: 1 to 100 printable characters")
    if not 1 <= points <= 1_000_000:
        raise InvalidInput(f"points: must be between 1 and 1000000, got {points}")
    await _lock(session, person)
    previous = await session.scalar(
        select(Redemption).where(Redemption.person_id == person.id, Redemption.idempotency_key == key)
    )
    if previous is not None:
        if (previous.points, previous.kind) != (points, kind):
            raise InvalidInput("idempotency-key: already used for a different redemption")
        return _out(previous, ctx, created=False)
    available = await balance(session, ctx, person.id)
    if points > available:
        raise InvalidInput(f"points: only {available} points can be redeemed now")
    redemption = Redemption(
        id=uuid.uuid4(),
        person_id=person.id,
        idempotency_key=key,
        kind=kind,
        points=points,
        fiscal_year=fiscal_year(ctx.local_date(ctx.current())),
    )
    if kind == "currency":
        if person.account_id is None:
            raise InvalidInput(
                "kind: paying into the currency needs the person's own account; choose voucher"
            )
        award = ctx.platform.hooks(ctx.municipality).award_for_reference(
            platform=ctx.platform,
            municipality=ctx.municipality,
            session=session,
            account_id=person.account_id,
            amount=points * ctx.settings.currency_per_point,
            source="health",
            reference=f"health:redemption:{redemption.id}",
            currency=None,
        )
        if award is None:
            raise InvalidInput("kind: no regional currency is enabled here; choose voucher")
        session.add(redemption)
        await session.flush()
        redemption.transfer_id = str((await award).transfer_id)
    else:
        redemption.voucher_code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(10))
        session.add(redemption)
    await session.flush()
    record(
        session,
        actor=actor.ref,
        action="health.points_redeemed",
        target_type="health_redemption",
        target_id=redemption.id,
        payload={"kind": kind, "points": points, "person_id": person.id},
    )
    return _out(redemption, ctx, created=True)
