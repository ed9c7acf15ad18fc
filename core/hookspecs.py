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
    from core.workflow import Workflow


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
def register_periodic_jobs() -> list[Any]:
    """Jobs to run once per period (daily reminders, expiry sweeps) in each municipality where the plugin is on.

    Called once when a process starts its periodic scheduler (app and worker processes alike). Each job must
    also be returned from ``register_actors``. However many processes run, a period is claimed once per
    municipality, and the job is queued through the outbox with the key ``periodic:<job>:<period start>``.

    :returns: a list of :class:`core.jobs.Periodic`.
    """


@hookspec
def register_permissions() -> list[Permission]:
    """Permissions the plugin's routes and commands check, with the roles that hold them by default.

    Called once when the platform is built. Names are ``<plugin>.<action>`` and must start with the plugin's
    own name; each may name the API scope (``<plugin>:<word>``) that lets a key or token use it. A municipality
    can give roles more through its manifest's ``[permissions]`` table or ``tsunagu role grant``.

    :returns: a list of :class:`core.identity.permissions.Permission`.
    """


@hookspec
def register_workflows() -> list[Workflow]:
    """State machines the plugin declares, which the core runs (:mod:`core.workflow`).

    Called once when the platform is built, after ``register_permissions``. Each workflow's name is
    ``<plugin>.<name>`` and must start with the plugin's own name; the permissions its transitions need must be
    declared, and no other workflow may have its name or its model. A plugin that declares a workflow wrongly is
    left out as broken; the others run.

    :returns: a list of :class:`core.workflow.Workflow`.
    """


@hookspec
def register_notification_channels() -> list[Any]:
    """Notification channels the plugin provides besides the core's inbox, email and webhooks (LINE, SMS).

    Called once per process, the first time a notification is queued or delivered. A channel carries a
    municipality's notifications only where its plugin is enabled, and only to people who have not switched it
    off. A channel whose name is taken or malformed is logged and left out; the others work.

    :returns: a list of :class:`core.notifications.Channel` objects.
    """


@hookspec
def register_notification_templates() -> list[Any]:
    """Folders holding the plugin's notification templates, ``<plugin>.<name>.toml`` files.

    Called once per process, the first time a template is looked up. A folder provides only templates named
    after its own plugin; a municipality's ``municipalities/<slug>/templates/`` overrides them.

    :returns: a list of :class:`pathlib.Path`.
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


# --- events: per municipality ------------------------------------------------------------------------------------


@hookspec
def on_event(municipality: Municipality, event: Any) -> None:
    """Tell a plugin about a cross-plugin event published with :func:`core.outbox.publish_event`.

    Called in a worker after the publishing transaction committed, once per plugin enabled for the municipality,
    each plugin in a job of its own (``core.jobs.current_context()`` gives its session and message key). Delivery
    is at least once: the same ``event.id`` can arrive again, so act idempotently. An exception is logged and
    retried later for that plugin only. May be ``async def``.

    :param municipality: the municipality the event happened in.
    :param event: a :class:`core.outbox.Event` (``id``, ``name``, ``data``, ``occurred_at``).
    """


# --- services plugins offer each other: per municipality ---------------------------------------------------------


@hookspec(firstresult=True)
def award_for_reference(
    platform: Any,
    municipality: Municipality,
    session: Any,
    account_id: Any,
    amount: int,
    source: str,
    reference: str,
    currency: str | None,
) -> Any:
    """Pay value (points, a regional currency) to a person, once per ``(source, reference)``.

    Called by a plugin that rewards something (the ``health`` plugin's walking points, say) through
    ``platform.hooks(municipality).award_for_reference(...)``; answered by the plugin that keeps the ledger
    (``currency``) when it is enabled for the municipality. When none is, nobody answers and the call returns
    ``None``: the caller carries on without awarding. Stops at first non-None result.

    The answer is an awaitable: ``await`` it in the caller's transaction. It resolves to an object with
    ``transfer_id``, ``currency``, ``amount`` and ``created`` (``False`` when this ``(source, reference)`` was
    awarded before: nothing moved again). It raises ``core.exceptions`` errors (``InvalidInput`` for a reference
    reused for a different award, ``NotFound`` for an unknown person, ``InvalidInput`` when the award would pass
    the maximum balance), which roll back the caller's transaction unless caught.

    :param platform: the running :class:`core.platform.Platform`.
    :param municipality: the municipality whose currency pays.
    :param session: the caller's session, bound to ``municipality``; the award is made in its transaction.
    :param account_id: the person (account id) to pay.
    :param amount: whole units, at least 1.
    :param source: the calling plugin's name.
    :param reference: the caller's own id for what is rewarded (1 to 200 printable characters).
    :param currency: a currency code of the municipality, or ``None`` for its award currency.
    :returns: an awaitable, or ``None`` when no ledger plugin is enabled there.
    """
