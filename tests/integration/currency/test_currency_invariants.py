"""A hypothesis state machine drives random sequences of issues, awards, payments, refunds, redemptions,
reversals, expiries and the passing of time through the services, and after every step checks what must always
hold: ``verify`` passes (every transfer balances, every stored balance equals its entries, issued − redeemed −
expired = held, lots agree), and each wallet holds exactly what a simple model of the operations says."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from core.db import utcnow
from core.exceptions import Conflict, InvalidInput
from core.platform import create_platform
from core.tenancy import service
from core.tenancy.manifest import load_manifests
from plugins.currency import services
from tests.conftest import MANIFESTS
from tests.conftest import test_settings as settings_for
from tests.integration.currency.helpers import (
    COIN,
    fixed_code,
    make_person,
    make_shop,
    settings_of,
    tenant,
    tz_of,
)

REFUSED = (services.InsufficientBalance, services.LimitExceeded, InvalidInput, Conflict)


def test_the_ledger_invariants_hold_after_every_step(sqlite_template: Path, tmp_path: Path) -> None:
    base = tmp_path / "base.sqlite3"
    base.write_bytes(sqlite_template.read_bytes())
    loop = asyncio.new_event_loop()

    async def prepare() -> None:
        platform = create_platform(settings_for(f"sqlite+aiosqlite:///{base}"))
        try:
            await platform.refresh(force=True)
            await service.apply_manifests(platform, load_manifests(MANIFESTS), [str(p) for p in MANIFESTS])
            await service.configure_plugin(platform, "miki", "currency", {"currencies": [CURRENCY]})
        finally:
            await platform.close()

    loop.run_until_complete(prepare())
    LedgerMachine.base, LedgerMachine.loop = base, loop
    try:
        run_state_machine_as_test(
            LedgerMachine,
            settings=settings(
                max_examples=12,
                stateful_step_count=20,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            ),
        )
    finally:
        loop.close()


CURRENCY = {
    "code": COIN,
    "name": "みきコイン",
    "fee_rate_bp": 300,
    "max_payment": 4_000,
    "max_daily": 6_000,
    "max_balance": 12_000,
    "purchased_expiry_days": 60,
    "bonus_expiry_days": 20,
    "award_expiry_days": 40,
}


class LedgerMachine(RuleBasedStateMachine):
    """Each run starts from a copy of the same database: a fresh ledger, so runs replay exactly."""

    base: Path
    loop: asyncio.AbstractEventLoop

    people = Bundle("people")
    shops = Bundle("shops")
    payments = Bundle("payments")
    credits = Bundle("credits")

    def __init__(self) -> None:
        super().__init__()
        copy = self.base.with_name(f"run-{uuid.uuid4().hex[:8]}.sqlite3")
        copy.write_bytes(self.base.read_bytes())
        self.platform = create_platform(settings_for(f"sqlite+aiosqlite:///{copy}"))
        self.run(self.platform.refresh(force=True))
        self.now = utcnow() - timedelta(days=365)
        self.model: dict[uuid.UUID, int] = {}
        self.awards: dict[str, tuple[uuid.UUID, int]] = {}

    def run(self, work: Any) -> Any:
        return self.loop.run_until_complete(work)

    async def session_call(self, fn: Any, **kwargs: Any) -> Any:
        async with tenant(self.platform) as session:
            return await fn(session, **kwargs)

    def attempt(self, fn: Any, **kwargs: Any) -> Any:
        """The operation's answer, or ``None`` when it was refused (which must change nothing)."""
        try:
            return self.run(self.session_call(fn, **kwargs))
        except REFUSED:
            return None

    @rule(target=people)
    def new_person(self) -> uuid.UUID:
        person = self.run(make_person(self.platform))
        self.model[person] = 0
        return person

    @rule(target=shops)
    def new_shop(self) -> uuid.UUID:
        return self.run(make_shop(self.platform))

    @rule(target=credits, person=people, purchased=st.integers(0, 6_000), bonus=st.integers(0, 2_000))
    def issue(self, person: uuid.UUID, purchased: int, bonus: int) -> Any:
        settings_ = settings_of(self.platform)
        out = self.attempt(
            lambda s, **k: services.issue(s, settings_, **k),
            person_id=person,
            currency=COIN,
            purchased=purchased,
            bonus=bonus,
            actor="cli",
            now=self.now,
        )
        if out is not None:
            self.model[person] += purchased + bonus
            return out.id
        return None

    @rule(
        target=credits, person=people, amount=st.integers(1, 500), reference=st.sampled_from(["a", "b", "c"])
    )
    def award(self, person: uuid.UUID, amount: int, reference: str) -> Any:
        settings_ = settings_of(self.platform)
        out = self.attempt(
            lambda s, **k: services.award(s, settings_, **k),
            person_id=person,
            amount=amount,
            source="health",
            reference=reference,
            now=self.now,
        )
        if out is not None and out.created:
            self.model[person] += amount
            self.awards[reference] = (person, amount)
        elif out is not None:
            assert self.awards[reference] == (person, amount)
        return out.transfer_id if out is not None and out.created else None

    @rule(target=payments, person=people, shop=shops, amount=st.integers(1, 5_000))
    def pay(self, person: uuid.UUID, shop: uuid.UUID, amount: int) -> Any:
        settings_ = settings_of(self.platform)
        out = self.attempt(
            lambda s, **k: services.pay(s, settings_, **k),
            key=services.code_key(self.platform.settings),
            municipality="miki",
            tz=tz_of(self.platform),
            payer_id=person,
            code=fixed_code(self.platform, shop),
            amount=amount,
            actor="cli",
            now=self.now,
        )
        if out is None:
            return None
        self.model[person] -= amount
        assert out.balance == self.model[person]
        return (person, shop, out.id)

    @rule(payment=payments, amount=st.integers(1, 3_000))
    def refund(self, payment: Any, amount: int) -> None:
        if payment is None:
            return
        person, shop, payment_id = payment
        out = self.attempt(
            services.refund, merchant_id=shop, payment_id=payment_id, amount=amount, actor="cli", now=self.now
        )
        if out is not None:
            self.model[person] += amount

    @rule(shop=shops)
    def redeem(self, shop: uuid.UUID) -> None:
        settings_ = settings_of(self.platform)
        self.attempt(
            lambda s, **k: services.redeem(s, settings_, **k),
            merchant_id=shop,
            currency=COIN,
            actor="cli",
            now=self.now,
        )

    @rule(credit=credits)
    def reverse(self, credit: Any) -> None:
        if credit is None:
            return
        before = self.run(self.balances())
        out = self.attempt(services.reverse, transfer_id=credit, actor="cli", now=self.now)
        if out is not None:
            after = self.run(self.balances())
            for person in self.model:
                self.model[person] += after.get(person, 0) - before.get(person, 0)
            assert sum(before.values()) - sum(after.values()) in (0, out.amount)

    @rule(days=st.integers(1, 45))
    def time_passes(self, days: int) -> None:
        self.now += timedelta(days=days)

    @precondition(lambda self: bool(self.model))
    @rule()
    def expire(self) -> None:
        async def sweep() -> dict[uuid.UUID, int]:
            moved: dict[uuid.UUID, int] = {}
            async with tenant(self.platform) as session:
                due = await services.due_accounts(session, self.now)
            for account_id in due:
                async with tenant(self.platform) as session:
                    from plugins.currency.models import LedgerAccount

                    owner = (
                        await session.get(
                            LedgerAccount, (session.info["tsunagu.municipality_id"], account_id)
                        )
                    ).owner_id
                    moved[owner] = await services.expire_account(
                        session, account_id, now=self.now, actor="cli"
                    )
            return moved

        for person, amount in self.run(sweep()).items():
            self.model[person] -= amount

    def teardown(self) -> None:
        self.run(self.platform.close())

    async def balances(self) -> dict[uuid.UUID, int]:
        out = {}
        async with tenant(self.platform) as session:
            for person in self.model:
                found = await services.find_account(session, COIN, "resident", person)
                out[person] = found.balance if found is not None else 0
        return out

    @invariant()
    def books_verify(self) -> None:
        report = self.run(self.session_call(lambda s: services.verify(s)))
        assert report.ok, report.problem

    @invariant()
    def wallets_hold_what_the_model_says(self) -> None:
        assert self.run(self.balances()) == self.model
