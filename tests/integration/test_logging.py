"""Logs: JSON lines in production, text in development; each request line names the request and the town."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from litestar import get

from core import Plugin, PluginMeta, Title, hookimpl
from core.app import create_app
from core.logging import configure_logging
from core.platform import create_platform
from core.settings import Settings
from core.tenancy import service
from core.tenancy.manifest import load_manifests
from tests import conftest
from tests.asgi import lifespan_client

pytestmark = pytest.mark.parametrize("backend", ["sqlite"])  # logging does not depend on the database


class Failing(Plugin):
    meta = PluginMeta(name="failing", version="1.0", title=Title(ja="失敗", en="Failing"))

    @hookimpl
    def register_routes(self) -> list[Any]:
        @get("/", sync_to_thread=False)
        def fail() -> dict[str, str]:
            raise RuntimeError("line one\nline two")

        return [fail]


@contextmanager
def captured_stderr() -> Iterator[io.StringIO]:
    """Capture what a handler configured meanwhile writes; afterwards put the test logging back.

    A context manager inside the test rather than a fixture: pytest re-points ``sys.stderr`` between phases.
    """
    saved, captured = sys.stderr, io.StringIO()
    sys.stderr = captured
    try:
        yield captured
    finally:
        sys.stderr = saved
        configure_logging(Settings(environment="test", log_level="warning"))


async def serve(database_url: str, environment: str, requests: list[tuple[str, dict[str, str]]]) -> str:
    """Start the app in ``environment``, send ``requests``, stop it: what it logged."""
    with captured_stderr() as stderr:
        await _serve(database_url, environment, requests)
    return stderr.getvalue()


async def _serve(database_url: str, environment: str, requests: list[tuple[str, dict[str, str]]]) -> None:
    settings = conftest.replace_settings(  # production requires the secret (the audit log's MACs need it)
        conftest.test_settings(database_url), environment=environment, log_level="info", secret_key="s" * 48
    )
    platform = create_platform(settings, extra_plugins=[Failing()])
    try:
        await platform.refresh(force=True)
        await service.apply_manifests(
            platform, load_manifests(conftest.MANIFESTS), [str(p) for p in conftest.MANIFESTS]
        )
        await service.set_plugin_enabled(platform, "miki", "failing", True)
        async with lifespan_client(create_app(platform=platform, run_jobs_in_process=False)) as client:
            for path, headers in requests:
                await client.get(path, headers=headers)
            logging.getLogger("dramatiq.worker").warning("from the standard library")
    finally:
        await platform.close()


REQUESTS = [
    ("/notices/", {"x-request-id": "req-miki", "host": "miki.localhost"}),
    ("/healthz", {"x-request-id": "req-health"}),
    ("/notices/", {"x-request-id": "req-nowhere", "host": "nowhere.example.org"}),
    ("/", {"x-request-id": "req-host", "host": "takamatsu.localhost"}),
    ("/failing/", {"x-request-id": "req-fail", "host": "miki.localhost"}),
]


async def test_production_logs_are_json_lines_with_request_and_municipality(database_url: str) -> None:
    text = await serve(database_url, "production", REQUESTS)
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines
    records = [json.loads(line) for line in lines]  # every line, whoever wrote it, is one JSON object
    assert all(isinstance(r, dict) and {"event", "level", "timestamp"} <= set(r) for r in records)

    access = {r["request_id"]: r for r in records if r.get("logger") == "tsunagu.access"}
    assert set(access) == {"req-miki", "req-health", "req-nowhere", "req-host", "req-fail"}
    assert access["req-miki"] | {"duration_ms": 0, "timestamp": ""} == {
        "event": "request",
        "level": "info",
        "logger": "tsunagu.access",
        "request_id": "req-miki",
        "municipality": "miki",
        "method": "GET",
        "path": "/notices/",
        "status": 200,
        "duration_ms": 0,
        "timestamp": "",
    }
    assert access["req-host"]["municipality"] == "takamatsu"
    assert access["req-fail"]["municipality"] == "miki" and access["req-fail"]["status"] == 500
    # Unbound requests carry no municipality, not even the one of the request before.
    assert "municipality" not in access["req-health"]
    assert "municipality" not in access["req-nowhere"] and access["req-nowhere"]["status"] == 404

    failure = next(r for r in records if r["event"] == "request.unhandled_exception")
    assert failure["request_id"] == "req-fail" and failure["municipality"] == "miki"
    assert "RuntimeError: line one\nline two" in failure["exception"]  # a traceback stays inside one line
    assert any(r["event"] == "platform.started" for r in records)
    stdlib = [r for r in records if r["event"] == "from the standard library"]
    assert [r["logger"] for r in stdlib] == ["dramatiq.worker"]


async def test_development_logs_are_console_text(database_url: str) -> None:
    text = await serve(database_url, "development", REQUESTS[:2])
    lines = [line for line in text.splitlines() if line.strip()]
    for line in lines:
        with pytest.raises(ValueError):
            json.loads(line)
    access = [line for line in lines if "tsunagu.access" in line]
    assert len(access) == 2
    for part in ("request_id=req-miki", "municipality=miki", "status=200", "path=/notices/"):
        assert part in access[0], access[0]
    assert "request_id=req-health" in access[1] and "municipality" not in access[1]
    assert "\x1b[" not in text  # no colour codes when stderr is not a terminal
