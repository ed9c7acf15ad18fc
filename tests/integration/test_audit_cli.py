"""``tsunagu audit``: verify (exit 0, or exit 1 with one line naming the first bad entry), export as JSON
lines, retention and purge — run in-process against SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime
from typing import TypeVar

import pytest

from core.platform import Platform, create_platform
from tests.cli_runner import Run, cli_runner
from tests.conftest import MANIFESTS
from tests.conftest import test_settings as settings_for
from tests.integration.test_audit_log import chain, sql, tamper
from tests.integration.test_cli import assert_one_line_error

T = TypeVar("T")


@pytest.fixture
def applied(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[Run]:
    """``applied(*argv)`` runs ``tsunagu`` in-process on a database with the eight municipalities applied, as
    ``tests/integration/test_cli.py`` does."""
    monkeypatch.setenv("TSUNAGU_DATABASE_URL", database_url)
    for variable in ("TSUNAGU_ENV", "TSUNAGU_LOG_LEVEL", "TSUNAGU_BROKER_URL", "TSUNAGU_SECRET_KEY"):
        monkeypatch.delenv(
            variable, raising=False
        )  # the command and the test's platform share the secret file

    with cli_runner(capsys) as run:
        assert run("municipality", "apply", *MANIFESTS).code == 0
        yield run


def on_platform(database_url: str, work: Callable[[Platform], Awaitable[T]]) -> T:
    async def run() -> T:
        platform = create_platform(settings_for(database_url))
        try:
            await platform.refresh(force=True)
            return await work(platform)
        finally:
            await platform.close()

    return asyncio.run(run())


def test_verify_passes_a_clean_log_and_names_the_first_bad_entry(applied: Run, database_url: str) -> None:
    assert applied("plugin", "enable", "opinion_box", "-m", "miki").code == 0
    ok = applied("audit", "verify", "-m", "miki")
    assert ok.code == 0, ok.err
    summary, head = ok.lines
    assert summary.startswith("miki: the audit log verifies: ")
    seq, mac = head.removeprefix("head: ").split(":")
    entries = on_platform(database_url, lambda p: chain(p, "miki"))
    assert int(seq) == len(entries) and len(mac) == 64

    bad_seq, bad_event = entries[1]
    on_platform(
        database_url,
        lambda p: tamper(p, sql("UPDATE audit_events SET actor = 'system' WHERE id = :e", e=bad_event)),
    )
    line = assert_one_line_error(applied("audit", "verify", "-m", "miki"), code=1)
    assert (
        line
        == f"error: miki: the audit log does not verify: seq {bad_seq}, event {bad_event}: the event does not match its MAC (edited or forged)"
    )
    as_json = applied("audit", "verify", "-m", "miki", "--json")
    assert as_json.code == 1
    report = json.loads(as_json.out)
    assert report["ok"] is False and report["municipality"] == "miki"
    assert report["problems"][0] == {
        "kind": "event_edited",
        "seq": bad_seq,
        "event_id": str(bad_event),
        "detail": "the event does not match its MAC (edited or forged)",
    }
    assert applied("audit", "verify", "-m", "takamatsu").code == 0  # another municipality's log is its own


def test_verify_with_a_kept_head_catches_entries_removed_from_the_end(
    applied: Run, database_url: str
) -> None:
    head = applied("audit", "verify", "-m", "miki").lines[-1].removeprefix("head: ")
    entries = on_platform(database_url, lambda p: chain(p, "miki"))
    last = entries[-1][1]
    on_platform(
        database_url,
        lambda p: tamper(
            p,
            sql("DELETE FROM audit_events WHERE id = :e", e=last),
            sql("DELETE FROM audit_chain WHERE event_id = :e", e=last),
        ),
    )
    assert applied("audit", "verify", "-m", "miki", "--expect", head[:30]).code == 1
    assert_one_line_error(applied("audit", "verify", "-m", "miki", "--expect", "3:xyz"), "--expect", code=2)


def test_export_prints_json_lines_of_the_sealed_log(applied: Run, database_url: str) -> None:
    result = applied("audit", "export", "-m", "miki")
    assert result.code == 0, result.err
    lines = [json.loads(line) for line in result.lines]
    entries = on_platform(database_url, lambda p: chain(p, "miki"))
    assert sorted((e["seq"], uuid.UUID(e["id"])) for e in lines) == entries
    assert set(lines[0]) == {
        "seq",
        "id",
        "recorded_at",
        "actor",
        "action",
        "target_type",
        "target_id",
        "payload",
        "mac",
        "chain_mac",
    }
    times = [datetime.fromisoformat(e["recorded_at"]) for e in lines]
    assert times == sorted(times)
    assert result.err.strip() == f"miki: exported {len(lines)} audit event(s)"
    assert all(e["target_id"] != "takamatsu" for e in lines)

    assert applied("audit", "export", "-m", "miki", "--since", "2999-01-01").out == ""
    assert applied("audit", "export", "-m", "miki", "--until", "2000-01-01T00:00+09:00").out == ""
    middle = times[len(times) // 2].isoformat()
    later = [json.loads(line) for line in applied("audit", "export", "-m", "miki", "--since", middle).lines]
    assert later and all(datetime.fromisoformat(e["recorded_at"]) >= times[len(times) // 2] for e in later)
    assert_one_line_error(applied("audit", "export", "-m", "miki", "--since", "yesterday"), "--since")
    assert_one_line_error(applied("audit", "export", "-m", "atlantis"), "atlantis")


def test_retention_and_purge(applied: Run, database_url: str) -> None:
    assert (
        applied("audit", "retention", "-m", "miki").out.strip()
        == "miki keeps its audit log forever (no retention set)"
    )
    assert_one_line_error(
        applied("audit", "purge", "-m", "miki", "--before", "2020-01-01"), "no retention set"
    )
    assert_one_line_error(applied("audit", "retention", "-m", "miki", "--days", "30", "--off"), "not both")
    assert_one_line_error(applied("audit", "retention", "-m", "miki", "--days", "0"), "between 1 and 36500")

    done = applied("audit", "retention", "-m", "miki", "--days", "30")
    assert done.out.strip() == "miki now keeps its audit log for 30 days (was: forever)"
    assert json.loads(applied("audit", "retention", "-m", "miki", "--json").out) == {
        "municipality": "miki",
        "retention_days": 30,
    }
    assert applied("audit", "retention", "-m", "takamatsu").out.strip().endswith("forever (no retention set)")

    assert_one_line_error(
        applied("audit", "purge", "-m", "miki", "--before", "2999-01-01"), "may not be purged yet"
    )
    assert applied("audit", "verify", "-m", "miki").code == 0
    sealed = on_platform(database_url, lambda p: chain(p, "miki"))
    nothing = applied("audit", "purge", "-m", "miki", "--before", "2020-01-01")
    assert nothing.code == 0, nothing.err
    assert nothing.out.strip() == "miki: no audit entries recorded before 2020-01-01: nothing purged"
    assert on_platform(database_url, lambda p: chain(p, "miki")) == sealed

    off = applied("audit", "retention", "-m", "miki", "--off")
    assert off.out.strip() == "miki now keeps its audit log forever (no retention set) (was: 30 days)"
