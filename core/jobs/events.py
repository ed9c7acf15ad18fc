"""Delivering cross-plugin events (:func:`core.outbox.publish_event`) to each enabled plugin's ``on_event``.

``core.deliver_event`` fans an event out: one outbox message per plugin that implements ``on_event`` and is
enabled for the municipality, keyed by the event and the plugin, all in one transaction. Each
``core.deliver_event_to`` then calls one plugin, so a plugin that fails is retried on its own, without running the
others again or holding them up.
"""

from __future__ import annotations

import inspect
from typing import Any

import msgspec
import structlog

from core.jobs._context import JobContext, job
from core.outbox import Event, send_later

log = structlog.get_logger(__name__)


def _subscribers(ctx: JobContext) -> dict[str, Any]:
    enabled = ctx.platform.snapshot.enabled.get(ctx.municipality.id, frozenset())
    return {
        impl.plugin_name: impl
        for impl in ctx.platform.plugins.pm.hook.on_event.get_hookimpls()
        if impl.plugin_name in enabled
    }


@job(queue="default", max_retries=10)
async def deliver_event(ctx: JobContext, event: dict[str, Any]) -> None:
    """Queue the event once for each subscribing plugin (idempotent: keys are event + plugin)."""
    plugins = sorted(_subscribers(ctx))
    async with ctx.session() as session:
        for plugin in plugins:
            await send_later(
                session,
                "core.deliver_event_to",
                key=f"{ctx.message_key}:{plugin}",
                plugin=plugin,
                event=event,
            )


@job(queue="default", max_retries=20, min_backoff_ms=1_000)
async def deliver_event_to(ctx: JobContext, plugin: str, event: dict[str, Any]) -> None:
    """Call one plugin's ``on_event``; raising makes the broker retry this plugin only."""
    impl = _subscribers(ctx).get(plugin)
    if impl is None:
        log.info("event.not_delivered", plugin=plugin, reason="plugin no longer enabled or subscribed")
        return
    decoded = msgspec.convert(event, Event)
    with structlog.contextvars.bound_contextvars(plugin=plugin, event=decoded.name, event_id=decoded.id):
        result = impl.function(
            *[{"municipality": ctx.municipality, "event": decoded}[a] for a in impl.argnames]
        )
        if inspect.isawaitable(result):
            await result


JOBS = [deliver_event, deliver_event_to]
