"""A throwaway plugin for the notification tests: a channel (``postcard``) that keeps what it is given, and a
template folder with ``postcard.hello``.

The channel refuses people listed in ``no_address`` (``NoAddress``: skipped) and fails the first
``failures`` attempts (retried), so the tests can see every outcome a plugin channel can have.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from core import Plugin, PluginMeta, Title, hookimpl
from core.jobs import JobContext
from core.notifications import Channel, ChannelMessage, DeliveryFailed, NoAddress

TEMPLATES = Path(__file__).parent / "notification_templates"


class PostcardChannel(Channel):
    name = "postcard"
    title = Title(ja="はがき", en="Postcard")
    default_enabled = True

    def __init__(self) -> None:
        self.sent: list[tuple[str, ChannelMessage]] = []
        """(the job's municipality, the message)"""
        self.no_address: set[uuid.UUID] = set()
        self.failures = 0

    async def send(self, message: ChannelMessage, ctx: JobContext) -> None:
        if message.account_id in self.no_address:
            raise NoAddress("no postal address on file")
        if self.failures > 0:
            self.failures -= 1
            raise DeliveryFailed("the post office is closed")
        self.sent.append((ctx.municipality.slug, message))


class PostcardPlugin(Plugin):
    meta = PluginMeta(name="postcard", version="1.0.0", title=Title(ja="はがき", en="Postcard"))

    def __init__(self) -> None:
        self.channel = PostcardChannel()

    @hookimpl
    def register_notification_channels(self) -> list[Any]:
        return [self.channel]

    @hookimpl
    def register_notification_templates(self) -> list[Path]:
        return [TEMPLATES]
