"""``create_app(settings)``: the Litestar app of a whole deployment, every municipality and plugin included."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

import structlog
from litestar import Litestar, Router
from litestar.datastructures import State
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin, SwaggerRenderPlugin

from core.audit.routes import audit_router
from core.audit.sealing import Sealer
from core.exceptions import ImproperlyConfigured
from core.http.binding import TsunaguApp
from core.http.dependencies import DEPENDENCIES
from core.http.guards import plugin_enabled_guard
from core.http.platform_routes import CORE_ROUTES
from core.http.problems import exception_to_problem_response
from core.identity.oidc_routes import oidc_router
from core.identity.routes import auth_router
from core.identity.token_routes import TOKEN_ROUTES
from core.jobs import JobRunner, JobServices
from core.logging import configure_logging
from core.notifications.routes import notifications_router
from core.platform import Platform, create_platform
from core.plugins.base import Plugin
from core.settings import Settings, load_settings

log = structlog.get_logger(__name__)


def plugin_routers(platform: Platform) -> list[Router]:
    """Each plugin's routes under ``/<name>``, guarded so they exist only where the plugin is enabled."""
    routers = []
    for impl in platform.plugins.pm.hook.register_routes.get_hookimpls():
        try:
            handlers = impl.function() or []
        except Exception:  # that plugin serves no routes; the platform and the other plugins do
            log.exception("plugin.hook_failed", plugin=impl.plugin_name, hook="register_routes")
            continue
        if not handlers:
            continue
        name = impl.plugin_name
        routers.append(
            Router(
                path=f"/{name}",
                route_handlers=handlers,
                guards=[plugin_enabled_guard],
                opt={"plugin": name},
                tags=[name],
            )
        )
    return routers


def create_app(
    settings: Settings | None = None,
    *,
    platform: Platform | None = None,
    extra_plugins: Iterable[Plugin] = (),
    run_jobs_in_process: bool | None = None,
) -> Litestar:
    """Build the app. ``platform`` may be given (tests); otherwise it is created from ``settings``.

    With the embedded broker, job workers run inside this process unless ``run_jobs_in_process=False``.
    """
    settings = settings or (platform.settings if platform else load_settings())
    configure_logging(settings)
    platform = platform or create_platform(settings, extra_plugins=extra_plugins)
    runner = JobRunner(platform)
    platform.jobs = runner
    in_process = (
        settings.broker_url.startswith("embedded") if run_jobs_in_process is None else run_jobs_in_process
    )

    @asynccontextmanager
    async def lifespan(_app: Litestar) -> AsyncIterator[None]:
        await platform.start_refresher()
        await platform.check_database_role()
        platform.audit_sealer = Sealer(platform)
        platform.audit_sealer.start()
        jobs = JobServices(platform, runner)  # the outbox relay, periodic jobs, and in-process workers
        jobs.start(consume=in_process)
        for name, reason in sorted(platform.plugins.broken.items()):
            log.error("plugin.broken", plugin=name, reason=reason)
        log.info(
            "platform.started",
            municipalities=len(platform.snapshot.by_id),
            plugins=sorted(platform.plugins.plugins),
        )
        try:
            yield
        finally:
            await jobs.stop()
            await platform.close()

    app = TsunaguApp(
        route_handlers=[
            *CORE_ROUTES,
            auth_router(),
            oidc_router(),
            *TOKEN_ROUTES,
            audit_router(),
            notifications_router(),
            *plugin_routers(platform),
        ],
        dependencies=DEPENDENCIES,
        exception_handlers={Exception: exception_to_problem_response},
        lifespan=[lifespan],
        state=State({"platform": platform}),
        openapi_config=OpenAPIConfig(
            title="tsunagu",
            version="0.1.0",
            description="Shared digital platform for the municipalities of a region.",
            path="/schema",
            render_plugins=[ScalarRenderPlugin(), SwaggerRenderPlugin(path="/swagger")],
        ),
        logging_config=None,
        debug=False,
    )
    check_guarded_permissions(app, platform)
    return app


def check_guarded_permissions(app: Litestar, platform: Platform) -> None:
    """A route guarded by a permission nobody declared fails here, when the app is built, not on first call.

    :raises ImproperlyConfigured: naming the route and the permission.
    """
    for route in app.routes:
        for handler in getattr(route, "route_handlers", ()):
            for guard in handler.resolve_guards():
                permission = getattr(guard, "permission", None)
                if permission is not None and permission not in platform.permissions.permissions:
                    raise ImproperlyConfigured(
                        f"route {route.path} is guarded by permission {permission!r}, which no plugin declares"
                    )
