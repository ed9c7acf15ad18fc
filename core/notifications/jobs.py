"""The core's notification jobs, run as ``core.<function>`` in every municipality."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from core.jobs import job
from core.notifications.delivery import deliver
from core.notifications.fanout import fan_out

if TYPE_CHECKING:
    from core.jobs import JobContext


@job(max_retries=10, min_backoff_ms=1_000, max_backoff_ms=300_000)
async def deliver_notification(ctx: JobContext, delivery_id: str) -> None:
    """One attempt of one delivery (email, webhook, plugin channel); retries are queued by the attempt itself."""
    await deliver(ctx, uuid.UUID(delivery_id))


@job(max_retries=10, min_backoff_ms=1_000, max_backoff_ms=300_000)
async def fan_out_topic_send(ctx: JobContext, topic_send_id: str) -> None:
    """Give every subscriber of a topic send their notification."""
    await fan_out(ctx, uuid.UUID(topic_send_id))


JOBS = [deliver_notification, fan_out_topic_send]
