"""The ``tsunagu`` command, run in-process against a real database (SQLite and PostgreSQL).

What an administrator relies on: ``apply`` shows its plan and is idempotent, a bad manifest among good ones
is one line on stderr with exit code 2 and changes nothing, exports round-trip, every listing speaks JSON, and
the plugins' own commands act on one municipality only.
"""

from __future__ import annotations

import asyncio
import json
import re
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from sqlalchemy import select

import cli
from core.db import migrate
from core.platform import create_platform
from core.tenancy.codes import check_digit
from core.tenancy.manifest import load_manifests
from core.tenancy.models import MunicipalityRow, PlatformRevisionRow, PluginEnablementRow
from tests.cli_runner import Result, Run, cli_runner
from tests.conftest import MANIFESTS, enabled_in_manifests, installed_plugins
from tests.conftest import test_settings as settings_for
from tsunagu_opinion_box import services as opinion_services
from tsunagu_opinion_box.schemas import OpinionSubmit

SLUGS = sorted(p.stem for p in MANIFESTS)
PLUGINS = installed_plugins()
ENABLED = enabled_in_manifests()


@pytest.fixture
def tsunagu(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[Run]:
    """``tsunagu(*argv)`` runs the command in-process on the test database: exit code, stdout, stderr."""
    monkeypatch.setenv("TSUNAGU_DATABASE_URL", database_url)
    monkeypatch.setenv("COLUMNS", "200")  # tables are as wide as the terminal: room for every column
    for variable in ("TSUNAGU_ENV", "TSUNAGU_LOG_LEVEL", "TSUNAGU_BROKER_URL", "TSUNAGU_MUNICIPALITIES_DIR"):
        monkeypatch.delenv(variable, raising=False)

    with cli_runner(capsys) as run:
        yield run


@pytest.fixture
def applied(tsunagu: Run) -> Run:
    """The eight real municipalities applied from their manifests."""
    result = tsunagu("municipality", "apply", *MANIFESTS)
    assert result.code == 0, result.err
    return tsunagu


def db_state(database_url: str) -> dict[str, Any]:
    """Everything ``apply``, ``enable``, ``disable`` and ``config`` may change, read from the database."""

    async def read() -> dict[str, Any]:
        platform = create_platform(settings_for(database_url))
        try:
            async with platform.sessions.platform() as session:
                revision = await session.scalar(select(PlatformRevisionRow.revision))
                rows = (await session.scalars(select(MunicipalityRow).order_by(MunicipalityRow.slug))).all()
                slug_of = {r.id: r.slug for r in rows}
                enablements = (await session.scalars(select(PluginEnablementRow))).all()
                return {
                    "revision": revision,
                    "municipalities": {
                        r.slug: (r.code, r.name, r.name_en, list(r.hosts), r.timezone, r.locale, r.updated_at)
                        for r in rows
                    },
                    "plugins": {
                        (slug_of[e.municipality_id], e.plugin): (e.enabled, dict(e.settings), e.updated_at)
                        for e in enablements
                    },
                }
        finally:
            await platform.close()

    return asyncio.run(read())


def assert_one_line_error(result: Result, *fragments: str, code: int = 2) -> str:
    """Exit ``code``, nothing on stdout, exactly one line on stderr that contains every fragment."""
    assert result.code == code, (result.code, result.out, result.err)
    assert result.out == ""
    lines = result.err.splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def copy_manifests(directory: Path) -> dict[str, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    copies = {}
    for source in MANIFESTS:
        target = directory / source.name
        target.write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
        copies[source.stem] = target
    return copies


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, (path, old)
    path.write_text(text.replace(old, new), encoding="utf-8")


def manifest_toml(slug: str) -> dict[str, Any]:
    return tomllib.loads((MANIFESTS[0].parent / f"{slug}.toml").read_text(encoding="utf-8"))


# --- municipality apply ------------------------------------------------------------------------------------


def test_apply_prints_the_plan_then_applies_and_a_second_run_changes_nothing(
    tsunagu: Run, database_url: str
) -> None:
    manifests = load_manifests(MANIFESTS)
    expected = len(manifests) + sum(entry.enabled for m in manifests for entry in m.plugins.values())

    first = tsunagu("municipality", "apply", *MANIFESTS)

    assert first.code == 0, first.err
    assert first.lines[0] == "applying:"
    assert "  miki: create municipality (三木町)" in first.lines
    assert "  miki: enable opinion_box (reply_days=14)" in first.lines
    assert "  sanuki: enable notices (page_size=20)" in first.lines
    assert len(first.lines) == expected + 2
    assert first.lines[-1] == f"{expected} change(s) applied"
    state = db_state(database_url)
    assert sorted(state["municipalities"]) == SLUGS
    assert {key: value[:2] for key, value in state["plugins"].items()} == {
        (m.slug, name): (entry.enabled, entry.settings)
        for m in manifests
        for name, entry in m.plugins.items()
    }

    second = tsunagu("municipality", "apply", *MANIFESTS)

    assert (second.code, second.out, second.err) == (0, "no changes\n", "")
    assert db_state(database_url) == state


def test_dry_run_prints_the_plan_and_changes_nothing(tsunagu: Run, database_url: str, tmp_path: Path) -> None:
    empty = db_state(database_url)

    dry = tsunagu("municipality", "apply", "--dry-run", *MANIFESTS)

    assert dry.code == 0, dry.err
    assert dry.lines[0] == "plan:"
    assert "  miki: create municipality (三木町)" in dry.lines
    assert dry.lines[-1].endswith("change(s) would be made (dry run)")
    assert db_state(database_url) == empty

    assert tsunagu("municipality", "apply", *MANIFESTS).code == 0
    before = db_state(database_url)
    copies = copy_manifests(tmp_path / "edited")
    edit(copies["miki"], "page_size = 20", "page_size = 50")

    dry = tsunagu("municipality", "apply", "--dry-run", *copies.values())

    assert dry.lines == [
        "plan:",
        "  miki: configure notices (page_size)",
        "1 change(s) would be made (dry run)",
    ]
    assert db_state(database_url) == before


def test_a_bad_manifest_among_good_ones_fails_with_one_line_and_applies_nothing(
    tsunagu: Run, database_url: str, tmp_path: Path
) -> None:
    cases: list[tuple[str, str, str, str, str]] = [
        # (file edited, old text, new text, key path named, what the rule says)
        ("miki", 'code = "373419"', 'code = "373418"', "code", "check digit"),
        ("miki", 'locale = "ja"', 'locale = "ja"\nmayor = "三木"', "mayor", "unknown key"),
        ("sanuki", '["sanuki.localhost"]', '["sanuki.localhost", "miki.localhost"]', "hosts.1", "miki.toml"),
        (
            "naoshima",
            "[plugins.notices]",
            "[plugins.kairanban]\nenabled = true\n\n[plugins.notices]",
            "plugins.kairanban",
            "no such plugin",
        ),
        ("miki", "reply_days = 14", "reply_days = 500", "plugins.opinion_box.reply_days", "between 1 and 90"),
        ("miki", "reply_days = 14", "reply_dayz = 14", "plugins.opinion_box.reply_dayz", "unknown setting"),
        ("tonosho", "page_size = 20", 'page_size = "many"', "plugins.notices.page_size", "int"),
    ]
    empty = db_state(database_url)
    for number, (slug, old, new, key, rule) in enumerate(cases):
        copies = copy_manifests(tmp_path / f"case{number}")
        edit(copies[slug], old, new)

        for dry_run in ([], ["--dry-run"]):
            result = tsunagu("municipality", "apply", *dry_run, *copies.values())

            assert_one_line_error(result, f"{copies[slug]}: {key}: ", rule)
            assert db_state(database_url) == empty, (slug, key)


def test_a_manifest_clashing_with_a_municipality_not_in_the_apply_changes_nothing(
    applied: Run, database_url: str, tmp_path: Path
) -> None:
    before = db_state(database_url)
    code = f"37999{check_digit('37999')}"
    newtown = tmp_path / "newtown.toml"
    for hosts, clash_code, key in (
        (["newtown.localhost", "miki.localhost"], code, "hosts.1"),
        (["newtown.localhost"], "373419", "code"),
    ):
        newtown.write_text(
            f'slug = "newtown"\nname = "新町"\nname_en = "New Town"\ncode = "{clash_code}"\n'
            f"hosts = {json.dumps(hosts)}\n",
            encoding="utf-8",
        )

        result = applied("municipality", "apply", newtown)

        assert_one_line_error(result, f"{newtown}: {key}: ", "miki")
        assert db_state(database_url) == before


# --- list, show, export ------------------------------------------------------------------------------------


def test_list_and_show_describe_the_live_state(applied: Run) -> None:
    listed = applied("municipality", "list", "--json").json()

    by_code = sorted(load_manifests(MANIFESTS), key=lambda m: m.code)
    assert [m["slug"] for m in listed] == [m.slug for m in by_code]
    miki = next(m for m in listed if m["slug"] == "miki")
    assert miki == {
        "slug": "miki",
        "name": "三木町",
        "name_en": "Miki Town",
        "code": "373419",
        "hosts": ["miki.localhost"],
        "timezone": "Asia/Tokyo",
        "locale": "ja",
        "plugins": ENABLED["miki"],
    }
    assert all(m["plugins"] == ENABLED[m["slug"]] for m in listed)

    for slug in ("miki", "sanuki"):
        assert applied("municipality", "show", slug, "--json").json() == manifest_toml(slug)

    table = applied("municipality", "list")
    assert table.code == 0 and all(slug in table.out for slug in SLUGS)
    shown = applied("municipality", "show", "miki")
    assert shown.code == 0 and "三木町" in shown.out and "opinion_box" in shown.out


def test_export_round_trips_through_apply(applied: Run, database_url: str, tmp_path: Path) -> None:
    exported = applied("municipality", "export", "miki")
    assert exported.code == 0, exported.err
    assert tomllib.loads(exported.out) == manifest_toml("miki")
    path = tmp_path / "miki.toml"
    path.write_text(exported.out, encoding="utf-8")
    before = db_state(database_url)

    again = applied("municipality", "apply", path)

    assert (again.code, again.out) == (0, "no changes\n")
    assert db_state(database_url) == before

    edit(path, "page_size = 20", "page_size = 35")

    changed = applied("municipality", "apply", path)

    assert changed.lines == ["applying:", "  miki: configure notices (page_size)", "1 change(s) applied"]
    after = db_state(database_url)
    assert after["plugins"][("miki", "notices")][:2] == (True, {"page_size": 35})
    untouched = {k: v for k, v in after["plugins"].items() if k != ("miki", "notices")}
    assert untouched == {k: v for k, v in before["plugins"].items() if k != ("miki", "notices")}
    assert after["municipalities"] == before["municipalities"]

    written = tmp_path / "out" / "miki.toml"
    written.parent.mkdir()
    assert applied("municipality", "export", "miki", "--output", written).code == 0
    assert tomllib.loads(written.read_text(encoding="utf-8"))["plugins"]["notices"] == {
        "enabled": True,
        "page_size": 35,
    }


# --- plugin ------------------------------------------------------------------------------------------------


def test_plugin_list_is_the_plugins_by_municipalities_matrix(applied: Run) -> None:
    matrix = applied("plugin", "list", "--json").json()

    assert matrix["broken"] == []
    by_name = {p["name"]: p for p in matrix["plugins"]}
    assert sorted(by_name) == PLUGINS
    assert sorted(by_name["notices"]["enabled_for"]) == SLUGS
    assert by_name["opinion_box"]["enabled_for"] == ["miki"]
    assert by_name["opinion_box"]["title"] == {"ja": "ご意見箱", "en": "Opinion box"}

    only_sanuki = applied("plugin", "list", "--municipality", "sanuki", "--json").json()
    enabled_for = {p["name"]: p["enabled_for"] for p in only_sanuki["plugins"]}
    assert enabled_for == {name: ["sanuki"] if name in ENABLED["sanuki"] else [] for name in PLUGINS}

    table = applied("plugin", "list")
    assert table.code == 0
    rows = {
        line.split()[1]: line for line in table.lines if line.split()[1:2] in (["notices"], ["opinion_box"])
    }
    assert (rows["notices"].count("●"), rows["opinion_box"].count("●")) == (len(SLUGS), 1)


def test_plugin_info_describes_what_a_plugin_declares(applied: Run) -> None:
    info = applied("plugin", "info", "notices", "--json").json()

    assert (info["name"], info["version"], info["tables"]) == ("notices", "0.1.0", ["notices"])
    assert {f["name"]: f["default"] for f in info["settings"]} == {
        "page_size": 20,
        "categories": ["general", "bousai", "kosodate", "event"],
    }
    assert info["enabled_for"] == SLUGS
    assert Path(info["migrations"]).is_dir()

    box = applied("plugin", "info", "opinion_box", "--json").json()
    assert box["enabled_for"] == ["miki"]
    assert {f["name"] for f in box["settings"]} == {"reply_days", "max_length"}

    assert_one_line_error(applied("plugin", "info", "kairanban"), "kairanban")


def test_enable_and_disable_switch_one_plugin_for_one_municipality(applied: Run, database_url: str) -> None:
    before = db_state(database_url)

    off = applied("plugin", "disable", "notices", "--municipality", "miki")

    assert (off.code, off.out) == (0, "miki: disabled notices\n")
    after = db_state(database_url)
    assert after["plugins"][("miki", "notices")][:2] == (False, {"page_size": 20})  # its settings are kept
    assert {k: v for k, v in after["plugins"].items() if k != ("miki", "notices")} == {
        k: v for k, v in before["plugins"].items() if k != ("miki", "notices")
    }
    assert after["revision"] > before["revision"]
    listed = applied("plugin", "list", "--json").json()
    assert "miki" not in next(p for p in listed["plugins"] if p["name"] == "notices")["enabled_for"]

    again = applied("plugin", "disable", "notices", "-m", "miki")
    assert (again.code, again.out) == (0, "miki: notices was already disabled\n")
    assert db_state(database_url) == after

    on = applied("plugin", "enable", "opinion_box", "--municipality", "sanuki")
    assert (on.code, on.out) == (0, "sanuki: enabled opinion_box\n")
    assert db_state(database_url)["plugins"][("sanuki", "opinion_box")][:2] == (True, {})

    back = applied("plugin", "enable", "notices", "-m", "miki")
    assert (back.code, back.out) == (0, "miki: enabled notices\n")
    assert db_state(database_url)["plugins"][("miki", "notices")][:2] == (True, {"page_size": 20})

    current = db_state(database_url)
    assert_one_line_error(applied("plugin", "enable", "kairanban", "-m", "miki"), "plugins.kairanban")
    assert db_state(database_url) == current


def test_plugin_config_validates_before_storing(applied: Run, database_url: str) -> None:
    shown = applied("plugin", "config", "notices", "--municipality", "miki", "--json").json()
    assert shown == {"page_size": 20}

    changed = applied(
        "plugin",
        "config",
        "notices",
        "-m",
        "miki",
        "--set",
        "page_size=30",
        "--set",
        'categories=["general", "bousai"]',
        "--json",
    )

    assert changed.json() == {"page_size": 30, "categories": ["general", "bousai"]}
    state = db_state(database_url)
    assert state["plugins"][("miki", "notices")][:2] == (
        True,
        {"page_size": 30, "categories": ["general", "bousai"]},
    )
    assert applied("municipality", "show", "miki", "--json").json()["plugins"]["notices"]["page_size"] == 30
    text = applied("plugin", "config", "notices", "-m", "miki")
    assert text.code == 0 and "page_size = 30" in text.lines

    for assignments, key in (
        (["page_size=500"], "plugins.notices.page_size"),
        (["page_size=many"], "plugins.notices.page_size"),
        (["colour=red"], "plugins.notices.colour"),
        (["page_size=40", "categories=[]"], "plugins.notices.categories"),  # all or nothing
        (["page_size"], "--set expects KEY=VALUE"),
    ):
        argv = [arg for a in assignments for arg in ("--set", a)]
        result = applied("plugin", "config", "notices", "-m", "miki", *argv)

        assert_one_line_error(result, key)
        assert db_state(database_url) == state, assignments


@pytest.mark.parametrize(
    "argv",
    [
        ["municipality", "show", "nowhere"],
        ["municipality", "show", "nowhere", "--json"],
        ["municipality", "export", "nowhere"],
        ["plugin", "list", "--municipality", "nowhere", "--json"],
        ["plugin", "enable", "notices", "--municipality", "nowhere"],
        ["plugin", "disable", "notices", "--municipality", "nowhere"],
        ["plugin", "config", "notices", "--municipality", "nowhere", "--set", "page_size=30"],
        ["notices", "post", "-m", "nowhere", "--title", "t", "--body", "b"],
        ["notices", "list", "-m", "nowhere", "--json"],
        ["opinion_box", "list", "-m", "nowhere"],
    ],
    ids=lambda argv: " ".join(argv[:2]),
)
def test_an_unknown_municipality_is_exit_2_and_changes_nothing(
    applied: Run, database_url: str, argv: list[str]
) -> None:
    before = db_state(database_url)

    assert_one_line_error(applied(*argv), "'nowhere'")
    assert db_state(database_url) == before


@pytest.mark.parametrize("backend", ["sqlite"])
@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["frobnicate"],
        ["municipality"],
        ["municipality", "apply"],
        ["municipality", "list", "--yaml"],
        ["plugin", "enable", "notices"],
        ["plugin", "config", "notices", "-m", "miki", "--set"],
        ["notices", "withdraw", "not-a-uuid", "-m", "miki"],
        ["serve", "--port", "eighty"],
    ],
    ids=lambda argv: " ".join(argv) or "(nothing)",
)
def test_usage_errors_are_one_line_and_exit_2(tsunagu: Run, argv: list[str]) -> None:
    assert_one_line_error(tsunagu(*argv))


def test_every_listing_supports_json() -> None:
    tree = cli.build_cli()
    listings = [
        "municipality list",
        "municipality show",
        "plugin list",
        "plugin info",
        "plugin config",
        "notices list",
        "opinion_box list",
    ]
    for path in listings:
        command: click.Command = tree
        for name in path.split():
            assert isinstance(command, click.Group)
            command = command.commands[name]
        assert any("--json" in p.opts for p in command.params), path
    for group in tree.commands.values():
        if isinstance(group, click.Group) and "list" in group.commands:
            assert any("--json" in p.opts for p in group.commands["list"].params), group.name


def test_listings_print_json_that_parses(applied: Run) -> None:
    assert applied("notices", "post", "-m", "miki", "--title", "断水", "--body", "明日 9時から").code == 0
    for argv in (
        ["municipality", "list"],
        ["municipality", "show", "miki"],
        ["plugin", "list"],
        ["plugin", "info", "opinion_box"],
        ["plugin", "config", "notices", "-m", "miki"],
        ["notices", "list", "-m", "miki"],
        ["opinion_box", "list", "-m", "miki"],
    ):
        result = applied(*argv, "--json")
        assert result.code == 0, (argv, result.err)
        json.loads(result.out)


def test_db_current_shows_every_head(
    tsunagu: Run, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    platform = create_platform(settings_for(database_url))
    heads = migrate.heads(platform)
    asyncio.run(platform.close())
    # one head per branch: the core's and one per plugin
    with_migrations = [n for n, p in platform.plugins.plugins.items() if p.meta.migrations]
    assert sorted(h.split("_0")[0] for h in heads) == sorted(["core", *with_migrations])

    result = tsunagu("db", "current")

    assert result.code == 0, result.err
    assert sorted(re.findall(r"^(\S+) \((?:effective )?head\)$", result.out, re.M)) == heads

    monkeypatch.setenv("TSUNAGU_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'never-migrated.sqlite3'}")
    assert tsunagu("db", "current").out == "(empty database)\n"


# --- the plugins' own commands -----------------------------------------------------------------------------


def test_notices_post_list_withdraw(applied: Run, database_url: str) -> None:
    posted = applied(
        "notices",
        "post",
        "--municipality",
        "miki",
        "--title",
        "防災訓練",
        "--body",
        "9月1日 10時",
        "--category",
        "bousai",
        "--publish-at",
        "2026-09-01T09:00+09:00",
    )
    assert posted.code == 0, posted.err
    notice_id = uuid.UUID(posted.out.strip())

    listed = applied("notices", "list", "-m", "miki", "--json").json()

    assert listed == [
        {
            "id": str(notice_id),
            "category": "bousai",
            "title": "防災訓練",
            "published_at": "2026-09-01T00:00:00+00:00",
            "expires_at": None,
            "withdrawn": False,
        }
    ]
    assert applied("notices", "list", "-m", "sanuki", "--json").json() == []

    # Another municipality can neither see nor withdraw it.
    assert_one_line_error(applied("notices", "withdraw", notice_id, "-m", "sanuki"), str(notice_id))
    assert applied("notices", "list", "-m", "miki", "--json").json()[0]["withdrawn"] is False

    withdrawn = applied("notices", "withdraw", notice_id, "-m", "miki")
    assert (withdrawn.code, withdrawn.out) == (0, f"withdrawn {notice_id}\n")
    assert applied("notices", "list", "-m", "miki", "--json").json()[0]["withdrawn"] is True

    for argv, fragment in (
        (["--category", "gossip"], "category"),
        (["--publish-at", "2026-09-01T09:00"], "--publish-at"),
        (["--expires-at", "tomorrow"], "--expires-at"),
    ):
        result = applied("notices", "post", "-m", "miki", "--title", "t", "--body", "b", *argv)
        assert_one_line_error(result, fragment)
    assert len(applied("notices", "list", "-m", "miki", "--json").json()) == 1

    assert applied("plugin", "disable", "notices", "-m", "sanuki").code == 0
    result = applied("notices", "post", "-m", "sanuki", "--title", "t", "--body", "b")
    assert_one_line_error(result, "not enabled")
    assert_one_line_error(applied("notices", "list", "-m", "sanuki"), "not enabled")


def submit_opinion(database_url: str, slug: str, topic: str, body: str) -> str:
    async def work() -> str:
        platform = create_platform(settings_for(database_url))
        try:
            await platform.refresh(force=True)
            m = platform.municipality(slug)
            async with platform.sessions.tenant(m.id) as session:
                receipt = await opinion_services.submit(
                    session, platform.plugin_settings(m, "opinion_box"), OpinionSubmit(topic=topic, body=body)
                )
            return receipt.receipt
        finally:
            await platform.close()

    return asyncio.run(work())


def test_opinion_box_list_and_answer(applied: Run, database_url: str) -> None:
    receipt = submit_opinion(database_url, "miki", "公園", "ベンチを増やしてください")

    listed = applied("opinion_box", "list", "--municipality", "miki", "--json").json()

    assert [(o["receipt"], o["status"], o["topic"], o["body"]) for o in listed] == [
        (receipt, "received", "公園", "ベンチを増やしてください")
    ]

    # Another municipality running the opinion box cannot see or answer miki's opinion.
    assert applied("plugin", "enable", "opinion_box", "-m", "takamatsu").code == 0
    assert applied("opinion_box", "list", "-m", "takamatsu", "--json").json() == []
    assert_one_line_error(applied("opinion_box", "answer", receipt, "-m", "takamatsu"), receipt)
    assert applied("opinion_box", "list", "-m", "miki", "--json").json()[0]["status"] == "received"

    answered = applied("opinion_box", "answer", receipt.lower(), "-m", "miki")
    assert (answered.code, answered.out) == (0, f"answered {receipt.lower()}\n")
    assert applied("opinion_box", "list", "-m", "miki", "--json").json()[0]["status"] == "answered"

    assert_one_line_error(applied("opinion_box", "answer", "NOSUCHRCPT", "-m", "miki"), "NOSUCHRCPT")
    assert_one_line_error(applied("opinion_box", "list", "-m", "sanuki"), "not enabled")
