"""Every extension point of tsunagu, and nothing else.

Names tell the kind: ``register_*`` collects lists from every plugin, ``*_for_*`` asks for one answer
(``firstresult``), ``on_*`` tells plugins that something happened. Hooks marked *per municipality* are dispatched
only to the plugins enabled for that municipality (plus the core's default plugin); *start-up* hooks go to every
loaded plugin once per process, whatever is enabled where, because routes, commands and actors exist process-wide
and are gated per municipality when used.

``docs/plugin-hooks.md`` has one section per hook; ``tests/unit/test_docs.py`` fails when they drift apart.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.markers import hookspec

if TYPE_CHECKING:
    import click
    from litestar.types import ControllerRouterHandler

    from core.http.problems import Problem
    from core.identity.permissions import Permission
    from core.tenancy.registry import Municipality


# --- start-up: once per process, every loaded plugin ---------------------------------------------------------


@hookspec
def register_routes() -> list[ControllerRouterHandler]:
    """Litestar route handlers, controllers or routers the plugin serves.

    Called once when the app is built. The core mounts them under ``/<plugin name>`` and guards them: for a
    municipality where the plugin is not enabled they answer 404.

    :returns: a list of handlers, controllers or routers (paths relative to ``/<plugin name>``).
    """


@hookspec
def register_cli_commands() -> list[click.Command]:
    """Commands added to the ``tsunagu`` CLI under a group named after the plugin.

    Called once when the CLI starts. Commands that act on one municipality take ``--municipality SLUG``
    and must refuse to act when the plugin is not enabled there.

    :returns: a list of ``click.Command`` objects.
    """


@hookspec
def register_actors() -> list[Any]:
    """The plugin's background jobs, which the core turns into dramatiq actors named ``<plugin>.<function>``.

    Called once when the job runner is set up, in app and worker processes alike. Each is an
    ``async def fn(ctx, **kwargs)`` marked with :func:`core.jobs.job`; it runs bound to the municipality it was
    queued for (``ctx.municipality``, ``ctx.session()``), and only while the plugin is enabled there.

    :returns: a list of functions marked with ``@core.jobs.job``.
    """


@hookspec
def register_permissions() -> list[Permission]:
    """Permissions the plugin's routes and commands check, with the roles that hold them by default.

    Called once when the platform is built. Names are ``<plugin>.<action>`` and must start with the plugin's
    own name; each may name the API scope (``<plugin>:<word>``) that lets a key or token use it. A municipality
    can give roles more through its manifest's ``[permissions]`` table or ``tsunagu role grant``.

    :returns: a list of :class:`core.identity.permissions.Permission`.
    """


# --- plugin enablement: per municipality ------------------------------------------------------------------------


@hookspec
def on_plugin_enabled(municipality: Municipality, plugin_name: str, settings: Any) -> None:
    """Tell plugins that ``plugin_name`` was switched on for ``municipality``.

    Called after the change is committed, in the process that made it, on the plugins enabled for that
    municipality (the newly enabled one included). An exception is logged with the raising plugin's name and
    does not undo the change or stop the other plugins.

    :param municipality: the municipality the change applies to.
    :param plugin_name: the plugin that was enabled.
    :param settings: its validated settings (an instance of its settings Struct).
    """


@hookspec
def on_plugin_disabled(municipality: Municipality, plugin_name: str) -> None:
    """Tell plugins that ``plugin_name`` was switched off for ``municipality``.

    Called after the change is committed, on the plugins still enabled there plus the one switched off.
    Exceptions are logged with the plugin's name and otherwise ignored. Data is never deleted by disabling.

    :param municipality: the municipality the change applies to.
    :param plugin_name: the plugin that was disabled.
    """


# --- requests: per municipality ----------------------------------------------------------------------------------


@hookspec
def on_request_bound(municipality: Municipality, path: str, method: str) -> None:
    """Tell plugins a request has been bound to ``municipality`` and is about to be routed.

    Called for every request bound to a municipality, before routing, on the plugins enabled there. Meant for
    counters and tracing; it must be cheap and cannot refuse the request. Exceptions are logged and ignored.

    :param municipality: the municipality the request is bound to.
    :param path: the request path with any development prefix ``/m/<slug>`` removed.
    :param method: the HTTP method.
    """


@hookspec(firstresult=True)
def problem_for_exception(exception: BaseException, municipality: Municipality | None) -> Problem | None:
    """Turn an exception raised while handling a request into an RFC 9457 problem.

    Called by the one exception mapper, on the plugins enabled for the bound municipality (all plugins when the
    request is not bound). The core's default implementation runs last and handles platform errors, HTTP errors
    and validation errors; a plugin may answer first for its own exception types. Stops at first non-None result.

    :param exception: the exception.
    :param municipality: the bound municipality, or ``None``.
    :returns: a :class:`core.http.problems.Problem`, or ``None`` to let the next implementation answer.
    """
