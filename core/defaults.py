"""The core's own hook implementations, registered like a plugin so they are easy to see and to override.

They run last (``trylast``): a plugin may answer first for its own cases.
"""

from __future__ import annotations

import importlib
import re
from typing import Any

import structlog
from litestar.exceptions import HTTPException, ValidationException

import core.jobs  # noqa: F401 - the outbox and job tables join the shared metadata
import core.notifications.models  # noqa: F401 - so do the notification tables
from core.exceptions import PlatformError
from core.http.problems import Problem, problem_type
from core.identity.permissions import Permission
from core.markers import hookimpl
from core.workflow.problems import WorkflowDefaults

log = structlog.get_logger(__name__)


def _kind(exc: BaseException) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "-", type(exc).__name__).lower()


CORE_PERMISSIONS = (
    Permission(
        name="core.manage_users",
        description="Grant and revoke roles in the municipality",
        default_roles=("admin",),
    ),
    Permission(
        name="core.manage_api_keys",
        description="Create, list and revoke the municipality's API keys",
        default_roles=("admin",),
    ),
    Permission(
        name="core.read_audit",
        description="Read the municipality's audit log (GET /audit/events)",
        default_roles=("admin",),
        scope="core:audit",
    ),
    Permission(
        name="core.send_notifications",
        description="Send a message to everyone subscribed to a topic (POST /notifications/topics/{topic}/send)",
        default_roles=("staff", "admin"),
        scope="core:notify",
    ),
    Permission(
        name="core.manage_webhooks",
        description="Register, list and remove the municipality's webhook endpoints",
        default_roles=("admin",),
    ),
    Permission(
        name="core.manage_topics",
        description="Add and remove the municipality's own notification topics",
        default_roles=("admin",),
    ),
)


CORE_JOB_MODULES: tuple[str, ...] = ("core.jobs.events", "core.workflow.jobs", "core.notifications.jobs")
"""Modules holding the core's own jobs, each in a list ``JOBS``; they run as ``core.<function>`` in every
municipality, whatever plugins are enabled there."""


class CoreDefaults:
    """Fallbacks for hooks that must always have an answer, and the core's own declarations."""

    @hookimpl
    def register_actors(self) -> list[Any]:
        return [fn for module in CORE_JOB_MODULES for fn in importlib.import_module(module).JOBS]

    @hookimpl
    def register_permissions(self) -> list[Permission]:
        return list(CORE_PERMISSIONS)

    @hookimpl(trylast=True)
    def problem_for_exception(self, exception: BaseException, municipality: Any) -> Problem | None:
        if isinstance(exception, PlatformError):
            errors = exception.extra.get("errors")
            return Problem(
                type=problem_type(_kind(exception)),
                title=exception.title,
                status=exception.status_code,
                detail=exception.detail,
                errors=errors,
            )
        if isinstance(exception, ValidationException):
            extra = exception.extra if isinstance(exception.extra, list) else None
            return Problem(
                type=problem_type("malformed-request"),
                title="Malformed request",
                status=400,
                detail=exception.detail,
                errors=[dict(e) for e in extra] if extra else None,
            )
        if isinstance(exception, HTTPException):
            return Problem(
                title=_http_title(exception.status_code),
                status=exception.status_code,
                detail=exception.detail,
            )
        log.error("request.unhandled_exception", exc_info=exception)
        return Problem(
            title="Internal error", status=500, detail="The server could not complete the request."
        )


def _http_title(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


DEFAULT_PLUGINS: tuple[object, ...] = (CoreDefaults(), WorkflowDefaults())
