"""The municipality's own sender address for email (``三木町 <info@town.miki.lg.jp>``); unset: the deployment's
``TSUNAGU_SMTP_FROM``, named after the municipality."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select

from core.audit import record
from core.db.session import bound_municipality
from core.exceptions import ImproperlyConfigured, InvalidInput
from core.notifications.config import check_address
from core.notifications.models import NotificationSettingsRow

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession


async def email_from(session: AsyncSession) -> str | None:
    return await session.scalar(select(NotificationSettingsRow.email_from))


async def set_email_from(session: AsyncSession, value: str | None, *, actor: str) -> bool:
    """Set (or with ``None`` clear) the sender address; returns whether it changed.

    :raises InvalidInput: not one email address.
    """
    if value is not None:
        value = value.strip()
        try:
            check_address(value, "email_from")
        except ImproperlyConfigured as exc:
            raise InvalidInput(exc.detail) from None
    row = await session.scalar(select(NotificationSettingsRow))
    if (row.email_from if row else None) == value:
        return False
    if row is None:
        session.add(NotificationSettingsRow(municipality_id=bound_municipality(session), email_from=value))
    else:
        row.email_from = value
    record(
        session,
        actor=actor,
        action="core.notification_sender_set",
        target_type="municipality",
        target_id=str(bound_municipality(session)),
        payload={"email_from": value},
    )
    return True
