"""Notifications: in-app inbox, email, webhooks and plugin channels; templates in Japanese and English;
per-person preferences and topic subscriptions.

For plugins:

- :func:`notify` — a message to people (account ids), queued in the caller's transaction;
- :func:`notify_topic` — a message to everyone subscribed to a topic (防災, 子育て, イベント ...);
- :class:`Channel` — subclass it and return it from ``register_notification_channels`` to add a channel;
- templates: ``<plugin>.<name>.toml`` in a folder returned from ``register_notification_templates``.

Everything is delivered through the outbox (``core.outbox.send_later``) by the jobs
``core.deliver_notification`` and ``core.fan_out_topic_send``. See ``docs/notifications.md``.
"""

from core.notifications.channels import Channel, ChannelMessage, DeliveryFailed, NoAddress
from core.notifications.sending import notify, notify_topic
from core.notifications.templates import TemplateError
from core.notifications.topics import CORE_TOPICS, Topic

__all__ = [
    "CORE_TOPICS",
    "Channel",
    "ChannelMessage",
    "DeliveryFailed",
    "NoAddress",
    "TemplateError",
    "Topic",
    "notify",
    "notify_topic",
]
