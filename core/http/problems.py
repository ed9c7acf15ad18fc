"""RFC 9457 problem details, and the one mapper from exceptions to problem+json responses."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
import structlog
from litestar import Request, Response

if TYPE_CHECKING:
    from core.platform import Platform

PROBLEM_MEDIA_TYPE = "application/problem+json"

log = structlog.get_logger(__name__)


class Problem(msgspec.Struct, kw_only=True, omit_defaults=True):
    """An RFC 9457 problem. ``type`` is a URN naming the kind of problem; ``errors`` lists field errors."""

    title: str
    status: int
    type: str = "about:blank"
    detail: str | None = None
    instance: str | None = None
    errors: list[dict[str, Any]] | None = None


def problem_type(kind: str) -> str:
    return f"urn:tsunagu:problem:{kind}"


def encode_problem(problem: Problem) -> bytes:
    return msgspec.json.encode(problem)


def problem_response(problem: Problem, headers: dict[str, str] | None = None) -> Response[bytes]:
    return Response(
        content=encode_problem(problem),
        status_code=problem.status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


def exception_to_problem_response(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    """The one exception handler of the app: ask the hook ``problem_for_exception`` (core default last)."""
    from core.defaults import CoreDefaults

    platform: Platform = request.app.state.platform
    municipality = request.scope.get("state", {}).get("municipality")
    try:
        problem = platform.hooks(municipality).problem_for_exception(exception=exc, municipality=municipality)
    except Exception:  # a plugin's mapper failed: answer with the core's own mapping, never with no answer
        log.exception("plugin.hook_failed", hook="problem_for_exception")
        problem = CoreDefaults().problem_for_exception(exception=exc, municipality=municipality)
    if problem is None:  # the default plugin always answers; this guards against a deregistered default
        problem = Problem(title="Internal error", status=500)
    problem.instance = problem.instance or request.url.path
    headers = getattr(exc, "headers", None) if problem.status in (401, 405, 429) else None
    return problem_response(problem, headers=headers)
