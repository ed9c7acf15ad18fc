"""``tsunagu booking import-facilities`` on Takamatsu's real files, and ``export-facilities``.

Imports what it can, reports each skipped row and why, changes nothing the second time, writes nothing on a dry
run or for bad input; the export is a 自治体標準 公共施設一覧 CSV that imports back to the same facilities.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from core.audit import AuditEvent
from core.platform import create_platform
from plugins.booking.models import Facility, Unit
from plugins.booking.services._opendata import STANDARD_HEADERS
from tests.cli_runner import Run, cli_runner
from tests.conftest import MANIFESTS, TEST_SECRET_KEY
from tests.conftest import test_settings as settings_for

DATA = Path(__file__).resolve().parents[2] / "data" / "booking"


@pytest.fixture
def tsunagu(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[Run]:
    """The CLI on the test database, with the eight municipalities applied from their manifests."""
    monkeypatch.setenv("TSUNAGU_DATABASE_URL", database_url)
    monkeypatch.setenv("TSUNAGU_SECRET_KEY", TEST_SECRET_KEY)
    monkeypatch.setenv("COLUMNS", "200")
    for variable in ("TSUNAGU_ENV", "TSUNAGU_LOG_LEVEL", "TSUNAGU_BROKER_URL", "TSUNAGU_MUNICIPALITIES_DIR"):
        monkeypatch.delenv(variable, raising=False)
    with cli_runner(capsys) as run:
        assert run("municipality", "apply", *MANIFESTS).code == 0
        yield run


def counts(database_url: str, slug: str) -> tuple[int, int, int, object]:
    """Facilities, units, import audit events and the latest facility change of one municipality."""

    async def read() -> tuple[int, int, int, object]:
        platform = create_platform(settings_for(database_url))
        try:
            await platform.refresh(force=True)
            async with platform.sessions.tenant(platform.municipality(slug).id) as session:
                facilities = await session.scalar(select(func.count()).select_from(Facility))
                units = await session.scalar(select(func.count()).select_from(Unit))
                imports = await session.scalar(
                    select(func.count())
                    .select_from(AuditEvent)
                    .where(AuditEvent.action == "booking.facilities_imported")
                )
                latest = await session.scalar(select(func.max(Facility.updated_at)))
        finally:
            await platform.close()
        return facilities or 0, units or 0, imports or 0, latest

    return asyncio.run(read())


def test_takamatsu_files_import_once_and_a_second_import_changes_nothing(
    database_url: str, tsunagu: Run
) -> None:
    first = tsunagu("booking", "import-facilities", DATA / "0040.csv", "-m", "takamatsu")
    assert first.code == 0, first.err
    assert "skipped line 16: empty row" in first.lines
    assert first.lines[-1] == "0040.csv (linkdata): created 11, updated 0, unchanged 0, skipped 1"
    for name in ("0039.csv", "0004.csv"):
        assert tsunagu("booking", "import-facilities", DATA / name, "-m", "takamatsu").code == 0
    before = counts(database_url, "takamatsu")
    assert before[:3] == (11 + 11 + 52, 74, 3)

    again = tsunagu("booking", "import-facilities", DATA / "0039.csv", "-m", "takamatsu")
    assert again.lines[-1] == "0039.csv (linkdata): created 0, updated 0, unchanged 11, skipped 0"
    assert counts(database_url, "takamatsu") == before

    listed = tsunagu("booking", "list-facilities", "-m", "takamatsu", "--json").json()
    kameoka = next(f for f in listed if f["name"] == "高松市立亀岡庭球場")
    assert kameoka["hours_exceptions"] == [{"months": [6, 7, 8], "closes": "19:00"}]
    assert [u["name"] for u in kameoka["units"]] == ["施設全体"]
    assert counts(database_url, "miki") == (0, 0, 0, None)


def test_a_dry_run_reports_and_writes_nothing(database_url: str, tsunagu: Run) -> None:
    result = tsunagu(
        "booking", "import-facilities", DATA / "0035.csv", "-m", "takamatsu", "--dry-run", "--json"
    )
    report = result.json()
    assert report["dry_run"] and len(report["created"]) == 5
    assert any("毎月末日休館" in n["note"] for n in report["notes"])
    assert counts(database_url, "takamatsu") == (0, 0, 0, None)


def test_bad_input_is_one_line_exit_2_and_changes_nothing(
    database_url: str, tsunagu: Run, tmp_path: Path
) -> None:
    junk = tmp_path / "junk.csv"
    junk.write_bytes(b"\x80\x81\xff")
    result = tsunagu("booking", "import-facilities", junk, "-m", "takamatsu")
    assert result.code == 2 and result.err.count("\n") == 1 and "neither UTF-8 nor CP932" in result.err
    assert (
        tsunagu("booking", "import-facilities", DATA / "0039.csv", "-m", "naoshima").code == 2
    )  # not enabled
    assert counts(database_url, "takamatsu") == (0, 0, 0, None)


def test_the_export_is_a_standard_csv_that_imports_back(
    database_url: str, tsunagu: Run, tmp_path: Path
) -> None:
    assert tsunagu("booking", "import-facilities", DATA / "0039.csv", "-m", "takamatsu").code == 0
    out = tmp_path / "372013_public_facility.csv"
    assert tsunagu("booking", "export-facilities", "-m", "takamatsu", "-o", out).code == 0
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    header = raw.decode("utf-8-sig").splitlines()[0].split(",")
    assert header == list(STANDARD_HEADERS)
    back = tsunagu("booking", "import-facilities", out, "-m", "miki", "--dry-run", "--json").json()
    assert back["format"] == "standard"
    assert back["skipped"] and all(
        "372013" in s["reason"] for s in back["skipped"]
    )  # Takamatsu's rows, not Miki's
    again = tsunagu("booking", "import-facilities", out, "-m", "takamatsu", "--dry-run", "--json").json()
    assert len(again["created"]) == 11 and again["skipped"] == []


def test_lottery_run_commits_the_hash_then_publishes_the_seed_and_verify_reproduces(
    database_url: str, tsunagu: Run
) -> None:
    month = datetime.now(ZoneInfo("Asia/Tokyo")).strftime("%Y-%m")  # its applications closed last month
    run = tsunagu("booking", "lottery", "run", "-m", "miki", "--month", month)
    assert run.code == 0, run.err
    digest, seed = run.lines[0].split()[2], run.lines[-1].split()[1]
    assert hashlib.sha256(seed.encode()).hexdigest() == digest
    verified = tsunagu("booking", "lottery", "verify", "-m", "miki", "--month", month, "--seed", seed)
    assert verified.code == 0 and verified.lines == [
        f"reproduced {month}: 0 winning wishes (seed sha256 {digest})"
    ]
    wrong = tsunagu("booking", "lottery", "verify", "-m", "miki", "--month", month, "--seed", "0" * 64)
    assert wrong.code == 2 and "not the one committed" in wrong.err
    again = tsunagu("booking", "lottery", "run", "-m", "miki", "--month", month)
    assert again.code == 1 and "was drawn" in again.err
    assert tsunagu("booking", "lottery", "run", "-m", "miki", "--month", "2027-13").code == 2
