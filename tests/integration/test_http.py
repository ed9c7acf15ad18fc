"""The HTTP app: binding every request to one municipality, problem+json for every error, platform routes.

Runs on SQLite and PostgreSQL (the ``client`` fixture and the ``backend`` parameter of ``conftest``).
"""

from __future__ import annotations

import re
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import msgspec
import pytest
from litestar import get
from sqlalchemy.ext.asyncio import AsyncEngine

from core import Plugin, PluginMeta, Title, hookimpl
from core.app import create_app
from core.db.engine import create_engine
from core.http.dependencies import MunicipalityDep
from core.http.platform_routes import Health, MunicipalityFrontPage, MunicipalitySummary, Readiness
from core.logging import configure_logging
from core.platform import Platform, create_platform
from core.settings import Settings
from core.tenancy import service
from core.tenancy.manifest import load_manifests
from plugins.notices.schemas import NoticePage
from tests import conftest
from tests.asgi import lifespan_client
from tests.conftest import enabled_in_manifests
from tsunagu_opinion_box.schemas import OpinionReceipt

PROBLEM = "application/problem+json"
SECRET = "connection string postgres://admin:hunter2@10.0.0.5 exploded"
MIKI = {"host": "miki.localhost"}
UNKNOWN = {"host": "nowhere.example.org"}


# --- throwaway plugins --------------------------------------------------------------------------------------


class Probe(Plugin):
    """Records what it is told, in order: the binding hook, then its own handlers."""

    meta = PluginMeta(name="probe", version="1.0", title=Title(ja="試験", en="Probe"))

    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []

    @hookimpl
    def on_request_bound(self, municipality: Any, path: str, method: str) -> None:
        self.events.append(("bound", getattr(municipality, "slug", repr(municipality)), path))

    @hookimpl
    def register_routes(self) -> list[Any]:
        events = self.events

        @get("/where", sync_to_thread=False)
        def where(municipality: MunicipalityDep) -> dict[str, str]:
            events.append(("handler", municipality.slug, "/probe/where"))
            return {"municipality": municipality.slug}

        @get("/boom", sync_to_thread=False)
        def boom() -> dict[str, str]:
            raise RuntimeError(SECRET)

        return [where, boom]


class Schemata(Plugin):
    """A plugin whose name starts like the platform path ``/schema``."""

    meta = PluginMeta(name="schemata", version="1.0", title=Title(ja="スキーマ", en="Schemata"))

    @hookimpl
    def register_routes(self) -> list[Any]:
        @get("/", sync_to_thread=False)
        def index(municipality: MunicipalityDep) -> dict[str, str]:
            return {"municipality": municipality.slug}

        return [index]


async def platform_with(database_url: str, *plugins: Plugin, **settings: Any) -> Platform:
    """A platform on the (migrated, empty) database with the real manifests applied and ``plugins`` loaded."""
    platform = create_platform(
        conftest.replace_settings(conftest.test_settings(database_url), **settings), extra_plugins=plugins
    )
    await platform.refresh(force=True)
    if not platform.snapshot.by_id:
        await service.apply_manifests(
            platform, load_manifests(conftest.MANIFESTS), [str(p) for p in conftest.MANIFESTS]
        )
    return platform


@pytest.fixture
def probe() -> Probe:
    return Probe()


@pytest.fixture
async def probe_client(database_url: str, probe: Probe) -> AsyncIterator[httpx.AsyncClient]:
    """The app with the probe (enabled in miki only) and schemata (enabled in miki only)."""
    platform = await platform_with(database_url, probe, Schemata())
    await service.set_plugin_enabled(platform, "miki", "probe", True)
    await service.set_plugin_enabled(platform, "miki", "schemata", True)
    try:
        async with lifespan_client(create_app(platform=platform, run_jobs_in_process=False)) as client:
            yield client
    finally:
        await platform.close()


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Apps built with production settings switch the process to JSON logs: put test logging back after."""
    yield
    configure_logging(Settings(environment="test", log_level="warning"))


def assert_problem(response: httpx.Response, status: int, *, instance: str | None = None) -> dict[str, Any]:
    """An RFC 9457 problem: the media type, and title and status that agree with the response."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = msgspec.json.decode(response.content)
    assert isinstance(body, dict)
    assert body["status"] == status
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body.get("type", "about:blank"), str)
    if instance is not None:
        assert body["instance"] == instance
    return body


def free_port() -> int:
    """A TCP port nothing listens on (bound and released, so the OS just handed it out)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- binding ------------------------------------------------------------------------------------------------


async def test_a_request_is_bound_by_its_host(client: httpx.AsyncClient) -> None:
    for host in ("miki.localhost", "miki.localhost:8000", "MIKI.LocalHost", "miki.localhost:443"):
        response = await client.get("/", headers={"host": host})
        assert response.status_code == 200, (host, response.text)
        front = msgspec.json.decode(response.content, type=MunicipalityFrontPage)
        assert (front.slug, front.code, front.name) == ("miki", "373419", "三木町")
        assert sorted(s.name for s in front.services) == enabled_in_manifests()["miki"]


async def test_each_host_reaches_its_own_municipality(client: httpx.AsyncClient) -> None:
    for slug in ("takamatsu", "naoshima", "ayagawa"):
        response = await client.get("/", headers={"host": f"{slug}.localhost"})
        assert response.json()["slug"] == slug
    naoshima = await client.get("/", headers={"host": "naoshima.localhost"})
    assert [s["name"] for s in naoshima.json()["services"]] == ["notices"]  # opinion_box is miki's only


async def test_a_request_is_bound_by_the_development_prefix(client: httpx.AsyncClient) -> None:
    for path in ("/m/miki/", "/m/miki"):
        response = await client.get(path, headers=UNKNOWN)  # the prefix wins over the host
        assert response.status_code == 200, (path, response.text)
        assert response.json()["slug"] == "miki"
    notices = await client.get("/m/naoshima/notices/")
    assert notices.status_code == 200
    assert msgspec.json.decode(notices.content, type=NoticePage).page_size == 20


async def test_an_unknown_host_is_a_404_problem(client: httpx.AsyncClient) -> None:
    response = await client.get("/notices/", headers=UNKNOWN)
    body = assert_problem(response, 404, instance="/notices/")
    assert body["type"] == "urn:tsunagu:problem:unknown-municipality"
    assert body["title"] == "Unknown municipality"
    assert "nowhere.example.org" in body["detail"]
    assert set(body) == {"type", "title", "status", "detail", "instance"}


async def test_an_unknown_slug_is_a_404_problem(client: httpx.AsyncClient) -> None:
    for path in ("/m/nowhere/", "/m/nowhere/notices/", "/m/", "/m/MIKI/"):
        body = assert_problem(await client.get(path, headers=MIKI), 404, instance=path)
        assert body["type"] == "urn:tsunagu:problem:unknown-municipality"
        assert set(body) == {"type", "title", "status", "detail", "instance"}
        assert "slug" in body["detail"]


async def test_in_production_the_prefix_is_not_honoured_but_the_host_is(
    platform: Platform, restore_logging: None
) -> None:
    production = create_platform(conftest.replace_settings(platform.settings, environment="production"))
    async with lifespan_client(create_app(platform=production, run_jobs_in_process=False)) as client:
        assert_problem(await client.get("/m/miki/"), 404)
        assert_problem(await client.get("/m/miki/notices/"), 404)
        response = await client.get("/notices/", headers=MIKI)
        assert response.status_code == 200
        assert (await client.get("/", headers=MIKI)).json()["slug"] == "miki"
        assert (await client.get("/healthz")).status_code == 200


async def test_platform_paths_answer_without_binding(client: httpx.AsyncClient) -> None:
    for path in ("/healthz", "/readyz", "/municipalities", "/schema/openapi.json", "/schema"):
        response = await client.get(path, headers=UNKNOWN)
        assert response.status_code == 200, (path, response.text)


async def test_a_plugin_whose_name_starts_like_a_platform_path_is_still_bound(
    probe_client: httpx.AsyncClient,
) -> None:
    response = await probe_client.get("/schemata/", headers=MIKI)
    assert response.status_code == 200, response.text
    assert response.json() == {"municipality": "miki"}


# --- no plugin code before binding --------------------------------------------------------------------------


async def test_plugins_hear_of_a_request_only_once_it_is_bound(
    probe_client: httpx.AsyncClient, probe: Probe
) -> None:
    assert_problem(await probe_client.get("/probe/where", headers=UNKNOWN), 404)
    assert_problem(await probe_client.get("/m/nowhere/probe/where"), 404)
    assert probe.events == []  # nothing of the probe ran for requests bound to no municipality

    assert (await probe_client.get("/probe/where", headers=MIKI)).json() == {"municipality": "miki"}
    assert (await probe_client.get("/m/miki/probe/where")).json() == {"municipality": "miki"}
    assert probe.events == [
        ("bound", "miki", "/probe/where"),
        ("handler", "miki", "/probe/where"),
        ("bound", "miki", "/probe/where"),
        ("handler", "miki", "/probe/where"),
    ]


async def test_a_disabled_plugin_hears_nothing_and_its_routes_are_404(
    probe_client: httpx.AsyncClient, probe: Probe
) -> None:
    for path in ("/m/naoshima/probe/where", "/m/naoshima/probe/boom", "/m/takamatsu/probe/where"):
        body = assert_problem(await probe_client.get(path), 404, instance=path)
        assert body["type"] == "urn:tsunagu:problem:not-found"
    assert_problem(await probe_client.get("/probe/where", headers={"host": "naoshima.localhost"}), 404)
    assert probe.events == []


async def test_a_disabled_built_in_plugin_answers_404(client: httpx.AsyncClient) -> None:
    assert (await client.post("/m/miki/opinion_box/", json={"topic": "t", "body": "b"})).status_code == 201
    response = await client.post("/m/naoshima/opinion_box/", json={"topic": "t", "body": "b"})
    body = assert_problem(response, 404)
    assert body["type"] == "urn:tsunagu:problem:not-found"


# --- every error is problem+json ----------------------------------------------------------------------------


async def test_an_unknown_route_is_a_404_problem(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/m/miki/no/such/page"), 404, instance="/m/miki/no/such/page")
    assert_problem(await client.get("/schema/no-such-document.json"), 404)


async def test_a_wrong_method_is_a_405_problem(client: httpx.AsyncClient) -> None:
    response = await client.delete("/m/miki/notices/")
    assert_problem(response, 405)
    assert "GET" in response.headers["allow"]


async def test_invalid_input_is_a_400_problem_listing_the_field(client: httpx.AsyncClient) -> None:
    cases: list[tuple[str, str, Any, str]] = [
        ("GET", "/m/miki/notices/?page=abc", None, "page"),
        ("POST", "/m/miki/opinion_box/", {"topic": 5, "body": "b"}, "topic"),
        ("POST", "/m/miki/opinion_box/", {"body": "b"}, "topic"),
        ("POST", "/m/miki/opinion_box/", {"topic": "t", "body": "b", "sender": "x"}, "sender"),
    ]
    for method, path, payload, field in cases:
        body = assert_problem(await client.request(method, path, json=payload), 400)
        assert body["type"].startswith("urn:tsunagu:problem:")  # a kind of its own, not about:blank
        # Litestar reports a body field under the key "data" when it is missing, naming it in the message.
        named = [e for e in body["errors"] if field == e["key"] or f"`{field}`" in e["message"]]
        assert named, body
    # A path parameter that does not fit is no route at all.
    assert_problem(await client.get("/m/miki/notices/not-a-uuid"), 404)


async def test_malformed_json_is_a_400_problem(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/m/miki/opinion_box/", content=b'{"topic": "t", ', headers={"content-type": "application/json"}
    )
    assert_problem(response, 400)


async def test_a_broken_domain_rule_is_a_422_problem(client: httpx.AsyncClient) -> None:
    body = assert_problem(await client.post("/m/miki/opinion_box/", json={"topic": "   ", "body": "b"}), 422)
    assert body["type"] == "urn:tsunagu:problem:invalid-input"
    assert body["detail"].startswith("topic: must be 1 to 100 characters")


async def test_an_unexpected_exception_is_a_500_problem_that_leaks_nothing(
    probe_client: httpx.AsyncClient,
) -> None:
    response = await probe_client.get("/m/miki/probe/boom")
    body = assert_problem(response, 500, instance="/m/miki/probe/boom")
    assert body["title"] == "Internal error"
    for leak in ("hunter2", "exploded", "RuntimeError", "Traceback", "10.0.0.5"):
        assert leak not in response.text


# --- request ids --------------------------------------------------------------------------------------------


async def test_a_sane_request_id_is_echoed(client: httpx.AsyncClient) -> None:
    for path in ("/m/miki/", "/healthz", "/m/nowhere/", "/m/miki/no/such/page"):
        response = await client.get(path, headers={"x-request-id": "req-2024.04_01"})
        assert response.headers["x-request-id"] == "req-2024.04_01"


async def test_otherwise_a_request_id_is_generated(client: httpx.AsyncClient) -> None:
    for given in (None, "", "has space", "a" * 65, "<script>", "id;drop"):
        headers = {} if given is None else {"x-request-id": given}
        first = (await client.get("/m/miki/", headers=headers)).headers.get_list("x-request-id")
        second = (await client.get("/m/miki/", headers=headers)).headers.get_list("x-request-id")
        assert len(first) == len(second) == 1, given
        assert re.fullmatch(r"[0-9a-f]{32}", first[0]) and first != second, (given, first, second)


# --- OpenAPI and wire types ---------------------------------------------------------------------------------


async def test_the_openapi_document_is_3_1_and_lists_plugin_routes(probe_client: httpx.AsyncClient) -> None:
    response = await probe_client.get("/schema/openapi.json")
    assert response.status_code == 200
    document = msgspec.json.decode(response.content)
    assert document["openapi"].startswith("3.1")
    paths = set(document["paths"])
    assert {"/healthz", "/readyz", "/municipalities", "/"} <= paths
    assert {"/notices", "/notices/{notice_id}", "/opinion_box", "/opinion_box/{receipt}"} <= paths
    assert {"/probe/where", "/probe/boom", "/schemata"} <= paths


async def test_every_2xx_json_body_decodes_into_its_wire_type(client: httpx.AsyncClient) -> None:
    sent = await client.post("/m/miki/opinion_box/", json={"topic": "道路", "body": "街灯が切れています"})
    assert sent.status_code == 201
    receipt = msgspec.json.decode(sent.content, type=OpinionReceipt)
    expectations: list[tuple[str, Any]] = [
        ("/healthz", Health),
        ("/readyz", Readiness),
        ("/municipalities", list[MunicipalitySummary]),
        ("/m/miki/", MunicipalityFrontPage),
        ("/m/miki/notices/", NoticePage),
        ("/m/miki/notices/?page=2", NoticePage),
        (f"/m/miki/opinion_box/{receipt.receipt}", OpinionReceipt),
        ("/schema/openapi.json", dict[str, Any]),
    ]
    for path, wire_type in expectations:
        response = await client.get(path)
        assert 200 <= response.status_code < 300, (path, response.text)
        assert re.fullmatch(r"application/([a-z.]+\+)?json(;.*)?", response.headers["content-type"]), path
        msgspec.json.decode(response.content, type=wire_type, strict=True)
    listed = await client.get("/municipalities")
    members = msgspec.json.decode(listed.content, type=list[MunicipalitySummary])
    assert [m.code for m in members] == sorted(m.code for m in members) and len(members) == 8


# --- readiness ----------------------------------------------------------------------------------------------


async def ready(database_url: str, **settings: Any) -> httpx.Response:
    platform = await platform_with(database_url, **settings)
    try:
        async with lifespan_client(create_app(platform=platform, run_jobs_in_process=False)) as client:
            return await client.get("/readyz")
    finally:
        await platform.close()


async def test_ready_with_the_embedded_broker(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    readiness = msgspec.json.decode(response.content, type=Readiness)
    assert readiness == Readiness(status="ok", database="ok", broker="ok")


@pytest.mark.parametrize(
    "broker_url",
    ["redis://127.0.0.1:6379/0", "amqp://guest:guest@127.0.0.1:5672/"],
    ids=["redis", "rabbitmq"],
)
async def test_ready_with_a_real_broker(database_url: str, broker_url: str) -> None:
    response = await ready(database_url, broker_url=broker_url)
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ok", "database": "ok", "broker": "ok"}


@pytest.mark.parametrize(
    "scheme",
    ["redis://127.0.0.1:{port}/0", "amqp://guest:guest@127.0.0.1:{port}/"],
    ids=["redis", "rabbitmq"],
)
async def test_not_ready_when_the_broker_does_not_answer(database_url: str, scheme: str) -> None:
    response = await ready(database_url, broker_url=scheme.format(port=free_port()))
    body = assert_problem(response, 503, instance="/readyz")
    assert body["type"] == "urn:tsunagu:problem:not-ready"
    assert "database: ok" in body["detail"]
    assert "broker: unreachable" in body["detail"]


async def test_not_ready_when_the_database_does_not_answer(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    assert (await client.get("/readyz")).status_code == 200
    # The database goes away under a running app: new connections are refused.
    gone: AsyncEngine = create_engine(f"postgresql+asyncpg://nobody@127.0.0.1:{free_port()}/gone")
    working, platform.engine = platform.engine, gone
    try:
        response = await client.get("/readyz")
    finally:
        platform.engine = working
        await gone.dispose()
    body = assert_problem(response, 503, instance="/readyz")
    assert "database: unreachable" in body["detail"]
    assert "broker: ok" in body["detail"]
    assert (await client.get("/readyz")).status_code == 200  # and ready again once it is back
