"""The README's one command: ``tsunagu demo`` on a machine with no database yet migrates, loads the eight
municipalities, says where it listens, and serves them with their services and the OpenAPI schema."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import MANIFESTS, enabled_in_manifests
from tests.processes import Server, free_port, tsunagu_env

pytestmark = pytest.mark.slow


def test_demo_starts_from_nothing_and_serves_the_region(tmp_path: Path) -> None:
    database = tmp_path / "var" / "tsunagu.sqlite3"  # not even its folder exists yet
    port = free_port()
    server = Server(
        ["demo", "--port", str(port)],
        tsunagu_env(f"sqlite+aiosqlite:///{database}"),
        port,
        tmp_path / "demo.log",
    )
    try:
        server.wait_until_healthy(timeout=45)

        assert f"listening on http://127.0.0.1:{port}" in server.output()
        assert database.is_file()

        members = server.client.get("/municipalities")
        assert members.status_code == 200
        assert sorted(m["slug"] for m in members.json()) == sorted(p.stem for p in MANIFESTS)
        assert len(members.json()) == 8

        miki = server.client.get("/m/miki/")
        assert miki.status_code == 200
        assert miki.json()["name"] == "三木町"
        assert sorted(s["name"] for s in miki.json()["services"]) == enabled_in_manifests()["miki"]
        assert server.client.get("/m/miki/notices/").status_code == 200

        schema = server.client.get("/schema/openapi.json")
        assert schema.status_code == 200
        assert schema.json()["openapi"].startswith("3.1")
        assert any(path.startswith("/notices") for path in schema.json()["paths"])
    finally:
        server.stop()
    assert server.process.returncode is not None
