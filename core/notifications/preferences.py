"""Which channels a person wants, per municipality. The in-app inbox is always on; other channels default to on
(a plugin channel to its ``default_enabled``) until the person chooses."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING

import msgspec
from sqlalchemy import select

from core.audit import record
from core.db.base import utcnow
from core.exceptions import InvalidInput
from core.notifications._sql import insert_for
from core.notifications.channels import EMAIL, INBOX
from core.notifications.models import Preference
from core.notifications.registry import channels_for

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from core.platform import Platform
    from core.tenancy.registry import Municipality


class ChannelChoice(msgspec.Struct, kw_only=True, frozen=True):
    channel: str
    title: str
    title_en: str
    enabled: bool
    required: bool = False
    """Cannot be switched off (the inbox)."""


def _offered(platform: Platform, municipality: Municipality) -> dict[str, tuple[str, str, bool]]:
    """channel -> (title, title_en, default) for the channels a person can choose in this municipality."""
    offered = {INBOX: ("お知らせ受信箱", "Inbox", True), EMAIL: ("メール", "Email", True)}
    for name, channel in sorted(channels_for(platform, municipality).items()):
        offered[name] = (channel.title.ja, channel.title.en, channel.default_enabled)
    return offered


async def preferences(
    session: AsyncSession, platform: Platform, municipality: Municipality, account_id: uuid.UUID
) -> list[ChannelChoice]:
    """The person's choice for every channel offered in the session's municipality."""
    chosen = {
        row.channel: row.enabled
        for row in await session.scalars(select(Preference).where(Preference.account_id == account_id))
    }
    return [
        ChannelChoice(
            channel=name,
            title=title,
            title_en=title_en,
            enabled=True if name == INBOX else chosen.get(name, default),
            required=name == INBOX,
        )
        for name, (title, title_en, default) in _offered(platform, municipality).items()
    ]


async def set_preferences(
    session: AsyncSession,
    platform: Platform,
    municipality: Municipality,
    account_id: uuid.UUID,
    changes: Mapping[str, bool],
) -> list[ChannelChoice]:
    """Switch channels on or off for the person; audited when something changed.

    :raises InvalidInput: a channel not offered here, or switching the inbox off.
    """
    offered = _offered(platform, municipality)
    for name, enabled in changes.items():
        if name not in offered:
            raise InvalidInput(f"channels: {name[:40]!r} is not offered here (offered: {', '.join(offered)})")
        if name == INBOX and not enabled:
            raise InvalidInput("channels: the inbox cannot be switched off")
    before = {c.channel: c.enabled for c in await preferences(session, platform, municipality, account_id)}
    changed = {
        name: enabled for name, enabled in changes.items() if name != INBOX and before[name] != enabled
    }
    now = utcnow()
    for name, enabled in changed.items():
        await session.execute(
            insert_for(session)(Preference)
            .values(
                municipality_id=municipality.id,
                account_id=account_id,
                channel=name,
                enabled=enabled,
                updated_at=now,
            )
            .on_conflict_do_update(
                index_elements=["municipality_id", "account_id", "channel"],
                set_={"enabled": enabled, "updated_at": now},
            )
        )
    if changed:
        record(
            session,
            actor=f"account:{account_id}",
            action="core.notification_preferences_changed",
            target_type="account",
            target_id=account_id,
            payload={"channels": dict(sorted(changed.items()))},
        )
    return await preferences(session, platform, municipality, account_id)
