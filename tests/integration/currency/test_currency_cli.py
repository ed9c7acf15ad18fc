"""``tsunagu currency``: verify (exit 1 naming the first problem), issuing, shops, settlement, reports — in-process
on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest
from sqlalchemy import text

from core.identity.models import Account
from core.platform import Platform
from tests.cli_runner import Run, cli_runner
from tests.conftest import MANIFESTS
from tests.integration.currency.helpers import make_person, tenant
from tests.integration.test_audit_cli import on_platform
from tests.integration.test_cli import assert_one_line_error


@pytest.fixture
def run(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[Run]:
    monkeypatch.setenv("TSUNAGU_DATABASE_URL", database_url)
    for variable in ("TSUNAGU_ENV", "TSUNAGU_LOG_LEVEL", "TSUNAGU_BROKER_URL", "TSUNAGU_SECRET_KEY"):
        monkeypatch.delenv(variable, raising=False)
    with cli_runner(capsys) as runner:
        assert runner("municipality", "apply", *MANIFESTS).code == 0
        yield runner


def test_verify_passes_a_sound_ledger_and_names_the_first_problem(run: Run, database_url: str) -> None:
    person = on_platform(database_url, make_person)
    email = on_platform(database_url, lambda p: _email(p, person))
    issued = run(
        "currency", "issue", "-m", "miki", "--account", email, "--purchased", "1000", "--bonus", "200"
    )
    assert issued.code == 0, issued.err
    assert issued.out.startswith("issued 1200 MIKI")

    ok = run("currency", "verify", "--municipality", "miki")
    assert ok.code == 0, ok.err
    assert ok.lines == ["ok: 1 transfers, 2 accounts", "MIKI: issued 1200, redeemed 0, expired 0, held 1200"]

    async def tamper(platform: Platform) -> None:
        async with tenant(platform) as session:
            await session.execute(
                text("UPDATE currency_accounts SET balance = balance + 1 WHERE kind = 'resident'")
            )

    on_platform(database_url, tamper)
    bad = run("currency", "verify", "-m", "miki")
    assert bad.code == 1
    assert bad.err.count("\n") == 1
    assert "stores a balance of 1201, its entries sum to 1200" in bad.err


def test_shops_settlement_and_reports(run: Run, database_url: str) -> None:
    shop = run("currency", "add-merchant", "-m", "miki", "--name", "三木うどん", "--category", "food")
    assert shop.code == 0, shop.err
    shop_id = shop.out.strip()
    listed = run("currency", "merchants", "-m", "miki", "--json").json()
    assert listed == [{"id": shop_id, "name": "三木うどん", "category": "food", "closed": False}]
    person = on_platform(database_url, make_person)
    assert (
        run("currency", "add-member", "-m", "miki", "--merchant", shop_id, "--account", str(person)).out
        == "added\n"
    )

    statements = run(
        "currency", "statement", "-m", "miki", "--from", "2026-01-01", "--to", "2026-01-31", "--json"
    ).json()
    assert [s["closing_balance"] for s in statements] == [0]
    redeem = run("currency", "redeem", "-m", "miki", "--merchant", shop_id)
    assert_one_line_error(redeem, "holds no MIKI", code=1)
    assert run("currency", "expire", "-m", "miki").out == "expired 0 from 0 wallets\n"

    this_year = date.today().year
    report = run("currency", "outstanding", "-m", "miki", "--date", f"{this_year - 1}-09-30", "--json").json()
    assert report["outstanding"] == 0 and report["reference_date"] == f"{this_year - 1}-09-30"
    assert_one_line_error(
        run("currency", "outstanding", "-m", "miki", "--date", f"{this_year - 1}-10-01"),
        "March 31 and September 30",
    )
    stats = run("currency", "stats", "-m", "miki", "--from", "2026-W01", "--to", "2026-W02")
    assert stats.code == 0, stats.err
    assert stats.lines[0] == "week,category,age_band,district,people,payments,amount"
    assert_one_line_error(
        run("currency", "stats", "-m", "miki", "--from", "2026-01", "--to", "2026-W02"), "ISO week"
    )
    assert_one_line_error(
        run("currency", "verify", "-m", "takamatsu"), "currency is not enabled for takamatsu"
    )


async def _email(platform: Platform, person: object) -> str:
    async with platform.sessions.platform() as session:
        account = await session.get(Account, person)
        assert account is not None and account.email is not None
        return account.email
