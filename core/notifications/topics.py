"""Topics a municipality sends push-type information on (防災, 子育て, イベント ...), and who subscribed to them.

Every municipality offers the core topics; its administrators add their own (``tsunagu notify topic add`` or
``POST /notifications/topics``). A person subscribes per municipality. Every change is audited, with the account
id as the only reference to the person.
"""

from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING

import msgspec
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from core.audit import record
from core.db.base import utcnow
from core.db.session import bound_municipality
from core.exceptions import Conflict, InvalidInput, NotFound
from core.notifications._sql import insert_for
from core.notifications.models import Subscription, TopicRow

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

TOPIC_NAME = re.compile(r"^[a-z][a-z0-9_]{1,31}$")
MAX_TITLE = 100


class Topic(msgspec.Struct, kw_only=True, frozen=True):
    name: str
    title: str
    """In Japanese."""
    title_en: str
    core: bool = False
    """Offered by every municipality (cannot be removed)."""


CORE_TOPICS = (
    Topic(name="bousai", title="防災", title_en="Disaster prevention", core=True),
    Topic(name="kosodate", title="子育て", title_en="Child-raising", core=True),
    Topic(name="event", title="イベント", title_en="Events", core=True),
    Topic(name="general", title="お知らせ", title_en="General news", core=True),
)
_CORE_BY_NAME = {t.name: t for t in CORE_TOPICS}


async def list_topics(session: AsyncSession) -> list[Topic]:
    """The core topics, then the municipality's own, by name."""
    rows = await session.scalars(select(TopicRow).order_by(TopicRow.name))
    return [*CORE_TOPICS, *(Topic(name=r.name, title=r.title, title_en=r.title_en) for r in rows)]


async def require_topic(session: AsyncSession, name: str) -> Topic:
    """:raises NotFound: the municipality offers no topic ``name``."""
    if name in _CORE_BY_NAME:
        return _CORE_BY_NAME[name]
    row = (
        await session.scalar(select(TopicRow).where(TopicRow.name == name))
        if TOPIC_NAME.fullmatch(name)
        else None
    )
    if row is None:
        known = ", ".join(t.name for t in await list_topics(session))
        raise NotFound(f"no topic {name[:40]!r} here (topics: {known})")
    return Topic(name=row.name, title=row.title, title_en=row.title_en)


def _title(value: str, field: str) -> str:
    value = " ".join(value.split())
    if not 1 <= len(value) <= MAX_TITLE:
        raise InvalidInput(f"{field} must be 1 to {MAX_TITLE} characters, got {len(value)}")
    return value


async def add_topic(session: AsyncSession, *, name: str, title: str, title_en: str, actor: str) -> Topic:
    """Offer a topic of the municipality's own. :raises InvalidInput: malformed; :raises Conflict: taken."""
    if not TOPIC_NAME.fullmatch(name):
        raise InvalidInput(f"topic name must be 2 to 32 lowercase letters, digits and '_', got {name[:40]!r}")
    title, title_en = _title(title, "title"), _title(title_en, "title_en")
    taken = name in _CORE_BY_NAME or (
        await session.scalar(select(TopicRow.name).where(TopicRow.name == name)) is not None
    )
    if taken:
        raise Conflict(f"topic {name!r} exists already")
    session.add(TopicRow(name=name, title=title, title_en=title_en))
    try:
        await session.flush()
    except IntegrityError as exc:  # added by someone else meanwhile
        raise Conflict(f"topic {name!r} exists already") from exc
    record(session, actor=actor, action="core.topic_added", target_type="topic", target_id=name)
    return Topic(name=name, title=title, title_en=title_en)


async def remove_topic(session: AsyncSession, name: str, *, actor: str) -> int:
    """Stop offering one of the municipality's own topics; its subscriptions go with it. Returns how many.

    :raises InvalidInput: a core topic. :raises NotFound: no such topic of its own.
    """
    if name in _CORE_BY_NAME:
        raise InvalidInput(f"{name} is a core topic, offered everywhere; it cannot be removed")
    row = await session.scalar(select(TopicRow).where(TopicRow.name == name))
    if row is None:
        raise NotFound(f"no topic {name[:40]!r} of this municipality's own")
    removed = await session.execute(delete(Subscription).where(Subscription.topic == name))
    await session.delete(row)
    count = int(removed.rowcount or 0)  # type: ignore[attr-defined]
    record(
        session,
        actor=actor,
        action="core.topic_removed",
        target_type="topic",
        target_id=name,
        payload={"subscriptions_removed": count},
    )
    return count


# --- a person's subscriptions --------------------------------------------------------------------------------


async def subscribed_topics(session: AsyncSession, account_id: uuid.UUID) -> set[str]:
    return set(await session.scalars(select(Subscription.topic).where(Subscription.account_id == account_id)))


async def subscribe(session: AsyncSession, account_id: uuid.UUID, topic: str) -> bool:
    """Subscribe a person; ``False`` if they were already. :raises NotFound: no such topic here."""
    await require_topic(session, topic)
    added = await session.execute(
        insert_for(session)(Subscription)
        .values(
            municipality_id=bound_municipality(session),
            topic=topic,
            account_id=account_id,
            created_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["municipality_id", "topic", "account_id"])
    )
    if not added.rowcount:  # type: ignore[attr-defined]
        return False
    record(
        session,
        actor=f"account:{account_id}",
        action="core.topic_subscribed",
        target_type="topic",
        target_id=topic,
    )
    return True


async def unsubscribe(session: AsyncSession, account_id: uuid.UUID, topic: str) -> bool:
    """Unsubscribe a person; ``False`` if they were not subscribed."""
    removed = await session.execute(
        delete(Subscription).where(Subscription.account_id == account_id, Subscription.topic == topic)
    )
    if not removed.rowcount:  # type: ignore[attr-defined]
        return False
    record(
        session,
        actor=f"account:{account_id}",
        action="core.topic_unsubscribed",
        target_type="topic",
        target_id=topic,
    )
    return True
