"""``tsunagu apikey`` and ``tsunagu keys``, run in-process, and the rules of ``TSUNAGU_SECRET_KEY``.

What an administrator relies on: the key is printed once and never again, listings never show it, revoking is
immediate and idempotent, bad input is one line with exit code 2 and creates nothing; a rotation publishes the
new signing key before it signs and keeps issued tokens valid; production refuses to run without the secret,
and outside production every local process finds the same generated one.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import stat
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from core.app import create_app
from core.cli import runtime
from core.db.base import utcnow
from core.exceptions import ImproperlyConfigured, NotAuthenticated
from core.identity.authn import principal_from_api_key
from core.identity.keystore import signing_keys
from core.platform import create_platform
from core.settings import SECRET_KEY_FILE, Settings, secret_key_bytes, secret_key_file
from tests import conftest
from tests.asgi import lifespan_client
from tests.cli_runner import Result, Run, cli_runner
from tests.integration.test_apikeys import KEY_FORMAT, MIKI, SECRET_KEY, Vault, vault_platform


def assert_one_line_error(result: Result, *fragments: str, code: int = 2) -> None:
    assert result.code == code, (result.code, result.out, result.err)
    assert result.out == ""
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


@pytest.fixture
def cli_env(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[Run]:
    """``run(*argv)``: the command in-process on the test database, with ``vault`` loaded in every command."""
    monkeypatch.setenv("TSUNAGU_DATABASE_URL", database_url)
    monkeypatch.setenv("TSUNAGU_SECRET_KEY", SECRET_KEY)
    monkeypatch.setenv("COLUMNS", "200")
    for variable in ("TSUNAGU_ENV", "TSUNAGU_LOG_LEVEL", "TSUNAGU_BROKER_URL", "TSUNAGU_PUBLIC_URL"):
        monkeypatch.delenv(variable, raising=False)
    real = runtime.create_platform
    monkeypatch.setattr(
        runtime, "create_platform", lambda settings, **kw: real(settings, extra_plugins=[Vault()])
    )

    with cli_runner(capsys) as run:
        yield run


@pytest.fixture
def tsunagu(database_url: str, cli_env: Run) -> Run:
    """As ``cli_env``, on a database with the municipalities applied and ``vault`` enabled in miki and sanuki."""

    async def prepare() -> None:
        await (await vault_platform(database_url)).close()

    asyncio.run(prepare())
    return cli_env


def key_works(database_url: str, key: str, slug: str = "miki") -> bool:
    async def check() -> bool:
        platform = create_platform(conftest.test_settings(database_url), extra_plugins=[Vault()])
        try:
            await platform.refresh(force=True)
            principal = await principal_from_api_key(platform, key, platform.municipality(slug))
            return principal.kind == "api_key"
        finally:
            await platform.close()

    return asyncio.run(check())


# --- tsunagu apikey -------------------------------------------------------------------------------------------


def test_a_key_is_printed_once_listed_without_its_secret_and_revoked(database_url: str, tsunagu: Run) -> None:
    created = tsunagu("apikey", "create", "-m", "miki", "--name", "Vendor X sync", "--scope", "vault:read")
    assert created.code == 0, created.err
    [key] = [line for line in created.out.splitlines() if KEY_FORMAT.fullmatch(line)]
    assert created.out.count(key) == 1
    parts = KEY_FORMAT.fullmatch(key)
    assert parts is not None
    prefix, secret = parts["prefix"], parts["secret"]
    assert f"created API key {prefix} for miki: Vendor X sync" in created.out and "vault:read" in created.out
    assert key_works(database_url, key)

    as_json = tsunagu(
        "apikey", "create", "-m", "miki", "--name", "Other", "--scope", "vault:write", "--json"
    ).json()
    assert KEY_FORMAT.fullmatch(as_json["key"]) and as_json["scopes"] == ["vault:write"]
    assert set(as_json) == {
        "id", "municipality", "prefix", "name", "scopes", "created_at", "expires_at", "revoked_at", "last_used_at", "key",
    }  # fmt: skip

    table = tsunagu("apikey", "list", "-m", "miki")
    assert table.code == 0 and prefix in table.out and "Vendor X sync" in table.out
    listed = tsunagu("apikey", "list", "-m", "miki", "--json").json()
    assert [(k["prefix"], k["status"]) for k in listed] == [(prefix, "active"), (as_json["prefix"], "active")]
    assert listed[0]["last_used_at"] is not None  # key_works used it
    for output in (table.out, json.dumps(listed)):
        assert secret not in output and as_json["key"].split("_", 2)[2] not in output
    assert tsunagu("apikey", "list", "-m", "sanuki", "--json").json() == []

    revoked = tsunagu("apikey", "revoke", prefix, "-m", "miki")
    assert revoked.code == 0 and revoked.out == f"miki: revoked API key {prefix} (Vendor X sync)\n"
    with pytest.raises(NotAuthenticated, match="revoked"):
        key_works(database_url, key)
    again = tsunagu("apikey", "revoke", listed[0]["id"], "-m", "miki")
    assert again.code == 0 and "was already revoked" in again.out
    statuses = {
        k["prefix"]: (k["status"], k["revoked_at"] is not None)
        for k in tsunagu("apikey", "list", "-m", "miki", "--json").json()
    }
    assert statuses == {prefix: ("revoked", True), as_json["prefix"]: ("active", False)}


@pytest.mark.parametrize("backend", ["sqlite"])
def test_bad_input_is_one_line_with_exit_code_2_and_creates_nothing(tsunagu: Run) -> None:
    create = ("apikey", "create", "-m", "miki", "--name", "x")
    assert_one_line_error(
        tsunagu(*create, "--scope", "vault:read", "--scope", "vault:raed"),
        "unknown scope 'vault:raed' (valid scopes: ",
        "vault:read, vault:write",
    )
    assert_one_line_error(tsunagu(*create, "--scope", "vault:read", "--expires", "soon"), "--expires must be")
    assert_one_line_error(
        tsunagu(*create, "--scope", "vault:read", "--expires", "2020-01-01"), "in the future"
    )
    assert_one_line_error(tsunagu(*create, "--scope", "vault:read", "--expires", "1000d"), "at most 731 days")
    assert_one_line_error(
        tsunagu(*create, "--scope", "vault:read", "--expires", "2030-02-30"), "is not a date"
    )
    assert_one_line_error(tsunagu(*create), "--scope")
    assert_one_line_error(
        tsunagu("apikey", "create", "-m", "atlantis", "--name", "x", "--scope", "vault:read"), "atlantis"
    )
    assert tsunagu("apikey", "list", "-m", "miki", "--json").json() == []

    key = tsunagu(*create, "--scope", "vault:read", "--json").json()
    assert_one_line_error(tsunagu("apikey", "revoke", key["prefix"], "-m", "sanuki"), "sanuki has no API key")
    assert_one_line_error(
        tsunagu("apikey", "revoke", "tsu_secret_please", "-m", "miki"), "by its id or its prefix"
    )
    assert [k["status"] for k in tsunagu("apikey", "list", "-m", "miki", "--json").json()] == ["active"]


@pytest.mark.parametrize("backend", ["sqlite"])
def test_expires_takes_a_local_date_a_time_or_a_duration(tsunagu: Run) -> None:
    create = ("apikey", "create", "-m", "miki", "--name", "x", "--scope", "vault:read", "--json")
    tokyo = ZoneInfo("Asia/Tokyo")
    day = (datetime.now(tokyo) + timedelta(days=40)).date()

    through = tsunagu(*create, "--expires", day.isoformat()).json()["expires_at"]
    # Good through that whole day in Miki: until the next midnight there, 15:00 UTC.
    assert datetime.fromisoformat(through) == datetime.combine(
        day + timedelta(days=1), datetime.min.time(), tokyo
    )
    at = tsunagu(*create, "--expires", f"{day.isoformat()}T18:00").json()["expires_at"]
    assert datetime.fromisoformat(at) == datetime.combine(day, datetime.min.time(), tokyo).replace(hour=18)

    before = utcnow()
    month = datetime.fromisoformat(tsunagu(*create, "--expires", "30d").json()["expires_at"])
    assert before + timedelta(days=30) <= month <= utcnow() + timedelta(days=30)
    default = datetime.fromisoformat(tsunagu(*create).json()["expires_at"])
    assert before + timedelta(days=90) <= default <= utcnow() + timedelta(days=90)


# --- tsunagu keys ---------------------------------------------------------------------------------------------


async def test_a_rotation_publishes_the_new_key_before_it_signs_and_keeps_tokens_valid(
    database_url: str, cli_env: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def cli_run(*argv: object) -> Result:
        return await asyncio.to_thread(cli_env, *argv)

    assert (await cli_run("keys", "show")).out.startswith("no signing keys yet")
    platform = await vault_platform(database_url)
    try:
        async with lifespan_client(create_app(platform=platform, run_jobs_in_process=False)) as http:
            created = await cli_run(
                "apikey", "create", "-m", "miki", "--name", "x", "--scope", "vault:read", "--json"
            )
            key = created.json()["key"]
            old_token = await _token(http, key)
            [old] = (await cli_run("keys", "show", "--json")).json()
            assert old["status"] == "signing" and old["retires_at"] is None

            rotated = await cli_run("keys", "rotate", "--prepublish", "1d")
            assert rotated.code == 0, rotated.err
            shown = {k["kid"]: k for k in (await cli_run("keys", "show", "--json")).json()}
            [new_kid] = set(shown) - {old["kid"]}
            assert f"new signing key {new_kid}: published now" in rotated.out
            new = shown[new_kid]
            assert shown[old["kid"]]["status"] == "signing" and new["status"] == "waiting"
            activates = datetime.fromisoformat(new["activates_at"])
            assert timedelta(hours=23) < activates - datetime.now(UTC) <= timedelta(days=1)
            assert shown[old["kid"]]["retires_at"] == new["activates_at"]

            # The app reads the ring again once its copy is old (RING_MAX_AGE): here, at once.
            monkeypatch.setattr("core.identity.keystore.RING_MAX_AGE", 0.0)
            jwks = (await http.get("/.well-known/jwks.json")).json()
            assert {k["kid"] for k in jwks["keys"]} == {old["kid"], new_kid}  # published before it signs
            assert (await http.get("/vault/items", headers=_bearer(old_token))).status_code == 200
            newer_token = await _token(http, key)
            assert _kid(newer_token) == old["kid"]  # the new key waits its day

            ring = await signing_keys(platform).stored()
            assert ring is not None
            assert ring.current(activates - timedelta(seconds=1)).kid == old["kid"]
            assert ring.current(activates).kid == new_kid  # and then signs

            # A rotation with no pre-publication (a leaked key): the new key signs at once; old tokens live on.
            urgent = await cli_run("keys", "rotate", "--prepublish", "0")
            assert urgent.code == 0 and "shorter than the JWK Set cache time" in urgent.err
            latest = await _token(http, key)
            assert _kid(latest) not in (old["kid"], new_kid)
            for token in (old_token, newer_token, latest):
                assert (await http.get("/vault/items", headers=_bearer(token))).status_code == 200
    finally:
        await platform.close()


async def _token(http: httpx.AsyncClient, key: str) -> str:
    response = await http.post("/auth/token", headers={**MIKI, "x-api-key": key})
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def _bearer(token: str) -> dict[str, str]:
    return {**MIKI, "authorization": f"Bearer {token}"}


def _kid(token: str) -> str:
    head = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))["kid"]


@pytest.mark.parametrize("backend", ["sqlite"])
def test_keys_stored_under_another_secret_are_reported_and_can_be_replaced(
    tsunagu: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert tsunagu("keys", "rotate").code == 0
    monkeypatch.setenv("TSUNAGU_SECRET_KEY", "another-secret-of-at-least-32-bytes-length")
    assert_one_line_error(
        tsunagu("keys", "show"), "cannot be decrypted", "tsunagu keys rotate --discard-unreadable"
    )
    assert_one_line_error(tsunagu("keys", "rotate"), "cannot be decrypted")
    replaced = tsunagu("keys", "rotate", "--discard-unreadable", "--json").json()
    assert [k["status"] for k in replaced] == ["signing"]
    assert tsunagu("keys", "show", "--json").json() == replaced
    assert_one_line_error(tsunagu("keys", "rotate", "--prepublish", "31d"), "at most 30d")
    assert_one_line_error(
        tsunagu("keys", "rotate", "--prepublish", "tomorrow"), "--prepublish must be a duration"
    )


# --- TSUNAGU_SECRET_KEY ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["sqlite"])
def test_production_requires_the_secret_key(tsunagu: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(
        ImproperlyConfigured, match="TSUNAGU_SECRET_KEY must be set when TSUNAGU_ENV=production"
    ):
        secret_key_bytes(Settings(environment="production"))
    with pytest.raises(ImproperlyConfigured, match="TSUNAGU_SECRET_KEY must be at least 32 bytes, got 31"):
        Settings(environment="production", secret_key="x" * 31)
    assert secret_key_bytes(Settings(environment="production", secret_key="é" * 16)) == ("é" * 16).encode()
    assert "s3cr3t" not in repr(Settings(secret_key="s3cr3t" * 6)) and "secret_key='***'" in repr(
        Settings(secret_key="s3cr3t" * 6)
    )  # never in a log line or a traceback

    monkeypatch.setenv("TSUNAGU_ENV", "production")
    monkeypatch.delenv("TSUNAGU_SECRET_KEY")
    assert_one_line_error(
        tsunagu("keys", "rotate"), "TSUNAGU_SECRET_KEY must be set when TSUNAGU_ENV=production"
    )
    monkeypatch.setenv("TSUNAGU_SECRET_KEY", "short")
    assert_one_line_error(tsunagu("keys", "show"), "TSUNAGU_SECRET_KEY must be at least 32 bytes, got 5")


def test_outside_production_one_secret_is_made_0600_and_shared(tmp_path: Path) -> None:
    database = tmp_path / "var" / "tsunagu.sqlite3"
    url = f"sqlite+aiosqlite:///{database}"
    path = secret_key_file(Settings(database_url=url))
    assert path == tmp_path / "var" / SECRET_KEY_FILE  # next to the database; the folder need not exist yet
    assert not path.exists()

    settings = [
        Settings(database_url=url, environment=env) for env in ("development", "test") for _ in range(4)
    ]
    with ThreadPoolExecutor(max_workers=8) as pool:  # processes starting at once agree on one secret
        secrets_seen = set(pool.map(secret_key_bytes, settings))
    assert len(secrets_seen) == 1 and len(secrets_seen.pop()) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == [SECRET_KEY_FILE]  # no draft left behind
    assert secret_key_bytes(Settings(database_url=url)) == path.read_bytes().strip()

    explicit = "x" * 32
    assert secret_key_bytes(Settings(database_url=url, secret_key=explicit)) == explicit.encode()

    os.chmod(path, 0o644)
    with pytest.raises(ImproperlyConfigured, match=r"other users may read it \(mode 0644\); run: chmod 600"):
        secret_key_bytes(Settings(database_url=url))
    os.chmod(path, 0o600)
    path.write_text("too short\n")
    with pytest.raises(ImproperlyConfigured, match="must be at least 32 bytes, got 9"):
        secret_key_bytes(Settings(database_url=url))
