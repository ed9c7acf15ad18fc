"""Channels: how a notification leaves the platform besides the in-app inbox.

The core has ``email`` (SMTP) and ``webhook`` (signed JSON POSTs to endpoints an administrator registered).
A plugin adds others (LINE, SMS) by returning :class:`Channel` objects from ``register_notification_channels``;
a plugin channel carries a municipality's notifications only where its plugin is enabled.
"""

from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING, ClassVar

import msgspec

from core.plugins.base import Title

if TYPE_CHECKING:
    from core.jobs import JobContext

INBOX = "inbox"
EMAIL = "email"
WEBHOOK = "webhook"
CORE_CHANNELS = (INBOX, EMAIL, WEBHOOK)
CHANNEL_NAME = re.compile(r"^[a-z][a-z0-9_]{1,39}$")


class ChannelMessage(msgspec.Struct, kw_only=True, frozen=True):
    """What a channel is asked to deliver: one notification to one person, rendered in their language."""

    delivery_id: uuid.UUID
    """The same on every attempt of this delivery: use it to recognise a repeat (an idempotency key)."""
    notification_id: uuid.UUID
    municipality: str
    """The municipality's slug."""
    account_id: uuid.UUID
    locale: str
    template: str
    topic: str | None
    subject: str
    body: str
    attempt: int
    """1 for the first attempt."""


class DeliveryFailed(Exception):
    """Raised by a channel that could not deliver. ``permanent``: do not try again (else retried with backoff)."""

    def __init__(self, reason: str, *, permanent: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


class NoAddress(DeliveryFailed):
    """The person has no address on this channel (no email, no linked LINE account): the delivery is skipped."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason, permanent=True)


class Channel:
    """A plugin channel. Subclass it, set ``name`` and ``title``, implement :meth:`send`.

    ``send`` runs in a job bound to the municipality (``ctx.session()`` reads the plugin's own tables, such as
    the person's LINE id). It may be called again for the same ``message.delivery_id`` if a worker died after
    sending and before the result was recorded: pass the id on to the service as an idempotency key where it
    takes one.
    """

    name: ClassVar[str]
    """Lowercase letters, digits and ``_``; not ``inbox``, ``email`` or ``webhook``."""
    title: ClassVar[Title]
    default_enabled: ClassVar[bool] = True
    """Whether a person who has not chosen receives notifications on it."""

    async def send(self, message: ChannelMessage, ctx: JobContext) -> None:
        """Deliver ``message``. :raises DeliveryFailed: (``NoAddress`` to skip)."""
        raise NotImplementedError
