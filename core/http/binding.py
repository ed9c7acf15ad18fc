"""Binding each request to exactly one municipality, before routing and before any plugin code runs.

By ``Host`` (the hosts listed in manifests), or in development by a ``/m/<slug>/`` path prefix, which is removed
before routing. Platform paths (health, readiness, the OpenAPI schema, the list of members, the JWK Set of the token
signing keys) are served unbound.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import TYPE_CHECKING, Any

import structlog
from litestar import Litestar

from core.http.problems import PROBLEM_MEDIA_TYPE, Problem, encode_problem, problem_type

if TYPE_CHECKING:
    from litestar.types import Message, Receive, Scope, Send

    from core.platform import Platform
    from core.tenancy.registry import Municipality

PLATFORM_PATHS = frozenset(
    {"/healthz", "/readyz", "/municipalities", "/favicon.ico", "/schema", "/.well-known/jwks.json"}
)
PLATFORM_PREFIXES = ("/schema/",)  # with the slash: a plugin named ``schemata`` is not a platform path
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

access_log = structlog.get_logger("tsunagu.access")


def resolve(platform: Platform, scope: Scope) -> tuple[Municipality | None, str, str | None]:
    """Find the municipality of a request: ``(municipality, path to route, reason if none)``."""
    path: str = scope["path"]
    snapshot = platform.snapshot
    if platform.settings.uses_path_prefix and path.startswith("/m/"):
        slug, _, rest = path[3:].partition("/")
        municipality = snapshot.by_slug.get(slug)
        if municipality is None:
            return None, path, f"no municipality has the slug {slug!r}"
        return municipality, "/" + rest, None
    host = ""
    for key, value in scope["headers"]:
        if key == b"host":
            host = value.decode("latin-1")
            break
    municipality = snapshot.for_host(host)
    if municipality is None:
        return None, path, f"no municipality answers to host {host!r}"
    return municipality, path, None


class TsunaguApp(Litestar):
    """A Litestar app that binds every request to a municipality before Litestar routes it."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:  # type: ignore[override]
        if scope["type"] == "lifespan":
            await super().__call__(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _request_id(scope)
        status = {"code": 0}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        platform: Platform = self.state.platform
        path: str = scope["path"]
        if path in PLATFORM_PATHS or path.startswith(PLATFORM_PREFIXES):
            await super().__call__(scope, receive, send_with_id)
        else:
            municipality, routed_path, reason = resolve(platform, scope)
            if municipality is None:
                await _unknown_municipality(scope, send_with_id, reason or "")
            else:
                structlog.contextvars.bind_contextvars(municipality=municipality.slug)
                if routed_path != path:
                    scope["path"] = routed_path
                    scope["raw_path"] = routed_path.encode()
                    scope["root_path"] = scope.get("root_path", "") + path[: len(path) - len(routed_path)]
                scope.setdefault("state", {})["municipality"] = municipality
                platform.notify(
                    municipality,
                    "on_request_bound",
                    municipality=municipality,
                    path=routed_path,
                    method=scope.get("method", ""),
                )
                await super().__call__(scope, receive, send_with_id)
        if scope["type"] == "http":
            access_log.info(
                "request",
                method=scope["method"],
                path=path,
                status=status["code"],
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
            )


def _request_id(scope: Scope) -> str:
    for key, value in scope["headers"]:
        if key == b"x-request-id":
            candidate = value.decode("latin-1")
            if _REQUEST_ID.match(candidate):
                return candidate
    return uuid.uuid4().hex


async def _unknown_municipality(scope: Scope, send: Any, reason: str) -> None:
    if scope["type"] != "http":
        await send({"type": "websocket.close", "code": 4404})
        return
    body = encode_problem(
        Problem(
            type=problem_type("unknown-municipality"),
            title="Unknown municipality",
            status=404,
            detail=reason,
            instance=scope["path"],
        )
    )
    await send(
        {
            "type": "http.response.start",
            "status": 404,
            "headers": [
                (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
