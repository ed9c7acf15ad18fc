"""``tsunagu user`` and ``tsunagu role``, run in-process against a real database (SQLite and PostgreSQL).

What an administrator relies on: a person is checked as every form checks one, with every problem named in one
line and nothing stored; a password given on stdin is set and never printed; a town's listing names only its
people; a role or permission change reaches running servers without a restart, and a wrong one changes nothing.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import sys
import threading
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
from argon2 import PasswordHasher
from sqlalchemy import func, select

from core.app import create_app
from core.identity import passwords
from core.identity.models import Account, PasswordCredential
from core.identity.mynumber import individual_number_check_digit
from core.platform import Platform, create_platform
from core.tenancy.models import PlatformRevisionRow
from tests import conftest
from tests.asgi import lifespan_client
from tests.cli_runner import Result, Run
from tests.integration import test_cli
from tests.integration.test_access_matrix import make_account, open_session
from tests.integration.test_cli import assert_one_line_error

T = TypeVar("T")
tsunagu = test_cli.tsunagu  # the fixtures that run the command in-process on the test database
applied = test_cli.applied

PERSON = [
    "--email", "Taro@Example.JP",
    "--display-name", "三木 太郎",
    "--family-name", "三木",
    "--given-name", "太郎",
    "--family-name-kana", "みき",
    "--given-name-kana", "ﾀﾛｳ",
    "--phone", "０８７－８９１－３３００",
    "--postal-code", "〒761-0692",
    "--prefecture", "香川県",
    "--city", "木田郡三木町",
    "--town", "氷上",
    "--street", "310",
    "--residence", "miki",
]  # fmt: skip
PASSWORD = "correct horse battery staple"
UUID_LINE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\n")


def with_person(*changes: str, drop: tuple[str, ...] = ()) -> list[str]:
    """:data:`PERSON` with options replaced (``"--email", "x"``) or left out (``drop``)."""
    args = list(PERSON)
    replaced = dict(zip(changes[::2], changes[1::2], strict=True))
    out: list[str] = []
    for option, value in zip(args[::2], args[1::2], strict=True):
        if option in drop:
            continue
        out += [option, replaced.pop(option, value)]
    for option, value in replaced.items():
        out += [option, value]
    return out


def on_platform(database_url: str, work: Callable[[Platform], Awaitable[T]]) -> T:
    async def run() -> T:
        platform = create_platform(conftest.test_settings(database_url))
        try:
            await platform.refresh(force=True)
            return await work(platform)
        finally:
            await platform.close()

    return asyncio.run(run())


def stored(database_url: str) -> tuple[int, int, int]:
    """(accounts, passwords, platform revision) as the database has them."""

    async def read(platform: Platform) -> tuple[int, int, int]:
        async with platform.sessions.platform() as session:
            return (
                await session.scalar(select(func.count()).select_from(Account)) or 0,
                await session.scalar(select(func.count()).select_from(PasswordCredential)) or 0,
                await session.scalar(select(PlatformRevisionRow.revision)) or 0,
            )

    return on_platform(database_url, read)


@pytest.fixture(autouse=True)
def cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(passwords, "HASHER", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))


@pytest.fixture
def stdin(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    def feed(text: str) -> None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(text))

    return feed


def created(result: Result) -> str:
    assert result.code == 0, result.err
    assert UUID_LINE.fullmatch(result.out), result.out
    return result.out.strip()


# --- user create ----------------------------------------------------------------------------------------------


def test_create_prints_the_id_and_show_gives_back_the_checked_person(applied: Run) -> None:
    account_id = created(applied("user", "create", *PERSON))

    shown = applied("user", "show", "taro@example.jp", "--json").json()

    assert shown["id"] == account_id
    assert {
        k: shown[k] for k in ("email", "family_name_kana", "given_name_kana", "phone", "postal_code")
    } == {
        "email": "taro@example.jp",
        "family_name_kana": "ミキ",
        "given_name_kana": "タロウ",
        "phone": "0878913300",
        "postal_code": "761-0692",
    }
    assert (shown["residence"], shown["locale"], shown["is_operator"], shown["has_password"]) == (
        "miki",
        "ja",
        False,
        False,
    )
    assert shown["roles"] == {}
    assert applied("user", "show", account_id, "--json").json() == shown
    text = applied("user", "show", "TARO@example.jp")
    assert (
        text.code == 0
        and "〒761-0692 香川県 木田郡三木町 氷上 310" in text.out
        and "ミキ\u3000タロウ" in text.out
    )
    operator = created(applied("user", "create", *with_person("--email", "ope@example.jp"), "--operator"))
    assert applied("user", "show", operator, "--json").json()["is_operator"] is True


def test_every_problem_is_named_in_one_line_and_nothing_is_stored(applied: Run, database_url: str) -> None:
    before = stored(database_url)

    result = applied(
        "user",
        "create",
        *with_person(
            "--email", "taro@",
            "--family-name-kana", "Miki",
            "--postal-code", "76-0692",
            "--prefecture", "香川",
            "--residence", "atlantis",
            "--locale", "fr",
            drop=("--given-name", "--street"),
        ),
    )  # fmt: skip

    line = assert_one_line_error(result)
    for fragment in (
        "--given-name: required",
        "--family-name-kana: must be katakana or hiragana",
        "--email: part after @ must be a domain name",
        "--postal-code: must be 7 digits",
        "--prefecture: must be one of the 47 prefectures",
        "--street: required",
        "--residence: must be a member municipality, got 'atlantis'",
        "--locale: must be one of ja, en, got 'fr'",
    ):
        assert fragment in line, (fragment, line)
    assert stored(database_url) == before


def test_an_address_needs_its_parts_and_a_lone_part_is_named(applied: Run) -> None:
    lone_town = with_person(drop=("--postal-code", "--prefecture", "--city", "--street"))
    line = assert_one_line_error(applied("user", "create", *lone_town))
    assert line == (
        "error: --postal-code: required; --prefecture: required; --city: required; --street: required"
    ), line


def test_a_my_number_is_refused_and_never_repeated(applied: Run, database_url: str) -> None:
    first_eleven = "12345678901"
    number = first_eleven + str(individual_number_check_digit(first_eleven))
    written = f"{number[:4]}-{number[4:8]}-{number[8:]}"

    result = applied("user", "create", *with_person("--building", f"コーポ三木 {written}"))

    line = assert_one_line_error(result, "--building: must not contain a My Number")
    assert number not in line and written not in line and number[:8] not in line
    assert stored(database_url)[0] == 0


def test_an_email_taken_in_any_case_is_refused(applied: Run, database_url: str) -> None:
    created(applied("user", "create", *PERSON))

    for spelling in ("taro@example.jp", "TARO@EXAMPLE.JP"):
        assert_one_line_error(
            applied("user", "create", *with_person("--email", spelling)),
            "--email: is already used by another account",
        )
    assert stored(database_url)[0] == 1


def test_a_password_from_stdin_is_set_and_logs_in(
    applied: Run, database_url: str, stdin: Callable[[str], None]
) -> None:
    stdin(PASSWORD + "\n")

    result = applied("user", "create", *PERSON, "--password-stdin")

    account_id = created(result)
    assert PASSWORD not in result.out + result.err
    assert applied("user", "show", account_id, "--json").json()["has_password"] is True

    async def log_in(platform: Platform) -> Any:
        miki = platform.municipality("miki").id
        return (
            await passwords.check_password_login(platform, miki, "Taro@example.jp", PASSWORD),
            await passwords.check_password_login(platform, miki, "Taro@example.jp", PASSWORD + "!"),
        )

    right, wrong = on_platform(database_url, log_in)
    assert right is not None and str(right.id) == account_id
    assert wrong is None


@pytest.mark.parametrize(
    ("password", "rule"),
    [
        ("short", "--password-stdin: must be at least 10 characters long, got 5"),
        ("aaaaaaaaaaaa", "--password-stdin: must not be one character repeated"),
        ("taro@example.jp", "--password-stdin: must not be the email address"),
        ("", "--password-stdin: must be at least 10 characters long, got 0"),
    ],
)
def test_a_weak_password_stores_nothing_and_is_not_repeated(
    applied: Run, database_url: str, stdin: Callable[[str], None], password: str, rule: str
) -> None:
    before = stored(database_url)
    stdin(password + "\n")

    result = applied("user", "create", *with_person("--email", "taro@example.jp"), "--password-stdin")

    line = assert_one_line_error(result, rule)
    if password:
        assert f"'{password}'" not in line and f": {password}" not in line
    assert stored(database_url) == before


# --- roles of accounts ----------------------------------------------------------------------------------------


def test_grant_list_show_and_revoke_roles(applied: Run) -> None:
    taro = created(applied("user", "create", *PERSON))
    hanako = created(applied("user", "create", *with_person("--email", "hanako@example.jp")))
    nobody = created(applied("user", "create", *with_person("--email", "nobody@example.jp")))

    assert applied("user", "grant", "staff", "-m", "miki", "TARO@example.jp").out == (
        "miki: granted staff to TARO@example.jp\n"
    )
    assert applied("user", "grant", "staff", "-m", "miki", taro).out == f"miki: {taro} already holds staff\n"
    applied("user", "grant", "admin", "--municipality", "takamatsu", "hanako@example.jp")
    applied("user", "grant", "resident", "--municipality", "takamatsu", taro)

    everyone = {row["id"]: row for row in applied("user", "list", "--json").json()}
    assert set(everyone) == {taro, hanako, nobody}
    assert everyone[taro]["roles"] == {"miki": ["staff"], "takamatsu": ["resident"]}
    assert everyone[nobody]["roles"] == {}
    in_miki = applied("user", "list", "-m", "miki", "--json").json()
    assert [(row["id"], row["roles"]) for row in in_miki] == [(taro, {"miki": ["staff"]})]
    in_takamatsu = applied("user", "list", "-m", "takamatsu", "--json").json()
    assert [row["id"] for row in in_takamatsu] == [hanako, taro]  # by email
    assert all(set(row["roles"]) == {"takamatsu"} for row in in_takamatsu)
    assert applied("user", "list", "-m", "naoshima", "--json").json() == []
    table = applied("user", "list", "-m", "miki")
    assert table.code == 0 and taro in table.out and hanako not in table.out
    assert applied("user", "show", taro, "--json").json()["roles"] == {
        "miki": ["staff"],
        "takamatsu": ["resident"],
    }

    assert applied("user", "revoke", "staff", "-m", "miki", taro).out == f"miki: revoked staff from {taro}\n"
    assert applied("user", "revoke", "staff", "-m", "miki", taro).out == f"miki: {taro} did not hold staff\n"
    assert applied("user", "list", "-m", "miki", "--json").json() == []
    assert applied("user", "show", taro, "--json").json()["roles"] == {"takamatsu": ["resident"]}


@pytest.mark.parametrize(
    ("argv", "fragments"),
    [
        (
            ("user", "grant", "staff", "-m", "atlantis", "taro@example.jp"),
            ["unknown municipality 'atlantis'"],
        ),
        (("user", "grant", "boss", "-m", "miki", "taro@example.jp"), ["'boss' is not one of"]),
        (("user", "grant", "operator", "-m", "miki", "taro@example.jp"), ["'operator' is not one of"]),
        (("user", "grant", "staff", "-m", "miki", "jiro@example.jp"), ["no account has this email"]),
        (("user", "revoke", "staff", "-m", "miki", str(uuid.UUID(int=7))), ["no account has the id"]),
        (("user", "grant", "staff", "taro@example.jp"), ["Missing option '--municipality'"]),
        (("user", "show", "not an email"), ["expected an account id (a UUID) or an email address"]),
        (("user", "list", "-m", "atlantis"), ["unknown municipality 'atlantis'"]),
    ],
)
def test_role_mistakes_are_one_line_and_change_nothing(
    applied: Run, database_url: str, argv: tuple[str, ...], fragments: list[str]
) -> None:
    created(applied("user", "create", *PERSON))
    before = applied("user", "list", "--json").json()

    assert_one_line_error(applied(*argv), *fragments)
    assert applied("user", "list", "--json").json() == before


# --- tsunagu role ---------------------------------------------------------------------------------------------


def test_role_list_shows_the_defaults_and_the_municipalitys_grants(applied: Run) -> None:
    listed = {row["permission"]: row for row in applied("role", "list", "-m", "miki", "--json").json()}
    assert {"core.manage_users", "notices.post", "notices.read_all", "opinion_box.read"} <= set(listed)
    assert listed["notices.post"] | {"description": ""} == {
        "permission": "notices.post",
        "description": "",
        "scope": "notices:write",
        "default_roles": ["staff", "admin"],
        "granted_roles": [],
        "roles": ["staff", "admin"],
    }

    assert applied("role", "grant", "resident", "opinion_box.read", "-m", "miki").out == (
        "miki: granted opinion_box.read to resident\n"
    )
    listed = {row["permission"]: row for row in applied("role", "list", "-m", "miki", "--json").json()}
    assert listed["opinion_box.read"]["roles"] == ["resident", "staff", "admin"]
    assert listed["opinion_box.read"]["granted_roles"] == ["resident"]
    elsewhere = {row["permission"]: row for row in applied("role", "list", "-m", "sanuki", "--json").json()}
    assert elsewhere["opinion_box.read"]["roles"] == ["staff", "admin"]
    table = applied("role", "list", "-m", "miki")
    row = next(line for line in table.lines if "opinion_box.read" in line)
    assert "resident*, staff, admin" in row

    assert applied("role", "revoke", "resident", "opinion_box.read", "-m", "miki").out == (
        "miki: revoked opinion_box.read from resident\n"
    )
    assert applied("role", "revoke", "resident", "opinion_box.read", "-m", "miki").out == (
        "miki: resident was not granted opinion_box.read\n"
    )
    assert applied("role", "grant", "staff", "notices.post", "-m", "miki").out == (
        "miki: staff already holds notices.post\n"
    )


def test_role_grants_are_what_municipality_export_writes(applied: Run) -> None:
    applied("role", "grant", "resident", "notices.read_all", "-m", "miki")

    exported = applied("municipality", "show", "miki", "--json").json()

    assert exported["permissions"] == {"resident": ["notices.read_all"]}


@pytest.mark.parametrize(
    ("argv", "fragments"),
    [
        (
            ("role", "grant", "resident", "notices.nope", "-m", "miki"),
            ["no installed plugin declares 'notices.nope'"],
        ),
        (
            ("role", "grant", "boss", "notices.post", "-m", "miki"),
            ["role: must be one of resident, staff, admin"],
        ),
        (("role", "revoke", "operator", "notices.post", "-m", "miki"), ["role: must be one of"]),
        (("role", "revoke", "staff", "notices.post", "-m", "miki"), ["staff holds notices.post by default"]),
        (
            ("role", "grant", "resident", "notices.post", "-m", "atlantis"),
            ["unknown municipality 'atlantis'"],
        ),
        (("role", "list"), ["Missing option '--municipality'"]),
    ],
)
def test_unknown_roles_and_permissions_exit_2_and_change_nothing(
    applied: Run, database_url: str, argv: tuple[str, ...], fragments: list[str]
) -> None:
    before = stored(database_url)

    assert_one_line_error(applied(*argv), *fragments)

    assert stored(database_url) == before


def test_a_role_grant_reaches_a_running_server_without_a_restart(applied: Run, database_url: str) -> None:
    """The CLI is another process: the server learns of the grant through the platform revision."""

    async def scenario() -> list[int]:
        settings = conftest.replace_settings(conftest.test_settings(database_url), refresh_interval=0.05)
        platform = create_platform(settings)
        answers = []
        async with lifespan_client(create_app(platform=platform, run_jobs_in_process=False)) as client:
            resident = await make_account(platform, "miki", frozenset({"resident"}))
            cookie = await open_session(platform, "miki", resident)
            headers = {"cookie": "; ".join(f"{k}={v}" for k, v in cookie.cookies.items())}

            async def status() -> int:
                return (await client.get("/m/miki/notices/all", headers=headers)).status_code

            answers.append(await status())
            done = threading.Event()
            result: list[Result] = []

            def grant() -> None:  # the command runs its own event loop: give it a thread
                result.append(applied("role", "grant", "resident", "notices.read_all", "-m", "miki"))
                done.set()

            threading.Thread(target=grant).start()
            while not done.is_set():
                await asyncio.sleep(0.01)
            assert result[0].code == 0, result[0].err
            for _ in range(100):  # the refresher polls every 0.05 s
                if await status() == 200:
                    break
                await asyncio.sleep(0.05)
            answers.append(await status())
        return answers

    assert asyncio.run(scenario()) == [403, 200]


def test_json_output_is_json_even_for_japanese(applied: Run) -> None:
    created(applied("user", "create", *PERSON))
    out = applied("user", "list", "--json").out
    assert "三木 太郎" in out  # not \\u escapes
    assert isinstance(json.loads(out), list)
