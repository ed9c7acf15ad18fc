"""``/notifications``: the signed-in person's inbox, channels and topic subscriptions; staff sending to a topic;
administrators' webhook endpoints and topics. Served per municipality, like every route.
"""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from litestar import Request, Router, delete, get, post, put
from litestar.params import FromPath, FromQuery, JSONBody

from core.audit import actor_for
from core.exceptions import Forbidden
from core.http.dependencies import DbSession, MunicipalityDep, PlatformDep
from core.identity.authn import authenticate
from core.identity.guards import authenticated, requires
from core.notifications import broadcast, inbox, preferences, topics, webhooks
from core.notifications.broadcast import TopicSendOut
from core.notifications.inbox import InboxItem, InboxPage
from core.notifications.preferences import ChannelChoice
from core.notifications.webhooks import WebhookCreated, WebhookOut
from core.platform import Platform

# --- wire types ---------------------------------------------------------------------------------------------


class UnreadCount(msgspec.Struct, kw_only=True, frozen=True):
    unread: int


class MarkedRead(msgspec.Struct, kw_only=True, frozen=True):
    marked: int


class Preferences(msgspec.Struct, kw_only=True, frozen=True):
    channels: list[ChannelChoice]


class PreferencesUpdate(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    channels: dict[str, bool]
    """Channel name -> on or off; channels not named keep their setting."""


class TopicOut(msgspec.Struct, kw_only=True, frozen=True):
    name: str
    title: str
    title_en: str
    core: bool
    subscribed: bool


class TopicCreate(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    name: str
    title: str
    title_en: str


class TopicSendRequest(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """A template with its context, or a subject and body written by staff."""

    template: str | None = None
    context: dict[str, Any] | None = None
    subject: str | None = None
    body: str | None = None
    key: str | None = None
    """Idempotency key: sending again with the same key sends nothing more and answers the first send."""


class WebhookCreate(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    name: str
    url: str
    templates: list[str] = msgspec.field(default_factory=list)
    topics: list[str] = msgspec.field(default_factory=list)


async def _account(platform: Platform, request: Request[Any, Any, Any]) -> uuid.UUID:
    principal = await authenticate(platform, request)
    if principal.account_id is None:
        raise Forbidden("an API key acts for a system, not a person: it has no inbox or subscriptions")
    return principal.account_id


async def _actor(platform: Platform, request: Request[Any, Any, Any]) -> str:
    return actor_for(await authenticate(platform, request))


# --- the signed-in person ---------------------------------------------------------------------------------


@get("/inbox", guards=[authenticated], summary="Your notifications here, newest first")
async def list_inbox(
    request: Request[Any, Any, Any],
    platform: PlatformDep,
    db_session: DbSession,
    unread_only: FromQuery[bool] = False,
    limit: FromQuery[int] = 20,
    cursor: FromQuery[str | None] = None,
) -> InboxPage:
    account = await _account(platform, request)
    return await inbox.list_inbox(db_session, account, unread_only=unread_only, limit=limit, cursor=cursor)


@get("/inbox/unread-count", guards=[authenticated], summary="How many of your notifications here are unread")
async def unread_count(
    request: Request[Any, Any, Any], platform: PlatformDep, db_session: DbSession
) -> UnreadCount:
    return UnreadCount(unread=await inbox.unread_count(db_session, await _account(platform, request)))


@post("/inbox/{notification_id:uuid}/read", status_code=200, guards=[authenticated], summary="Mark one read")
async def mark_read(
    request: Request[Any, Any, Any],
    platform: PlatformDep,
    db_session: DbSession,
    notification_id: FromPath[uuid.UUID],
) -> InboxItem:
    return await inbox.mark_read(db_session, await _account(platform, request), notification_id)


@post("/inbox/read-all", status_code=200, guards=[authenticated], summary="Mark all your notifications read")
async def mark_all_read(
    request: Request[Any, Any, Any], platform: PlatformDep, db_session: DbSession
) -> MarkedRead:
    return MarkedRead(marked=await inbox.mark_all_read(db_session, await _account(platform, request)))


@get("/preferences", guards=[authenticated], summary="The channels you receive notifications on here")
async def get_preferences(
    request: Request[Any, Any, Any],
    platform: PlatformDep,
    municipality: MunicipalityDep,
    db_session: DbSession,
) -> Preferences:
    account = await _account(platform, request)
    return Preferences(channels=await preferences.preferences(db_session, platform, municipality, account))


@put("/preferences", guards=[authenticated], summary="Switch channels on or off")
async def put_preferences(
    request: Request[Any, Any, Any],
    platform: PlatformDep,
    municipality: MunicipalityDep,
    db_session: DbSession,
    data: JSONBody[PreferencesUpdate],
) -> Preferences:
    account = await _account(platform, request)
    chosen = await preferences.set_preferences(db_session, platform, municipality, account, data.channels)
    return Preferences(channels=chosen)


async def _topics_out(db_session: DbSession, account: uuid.UUID) -> list[TopicOut]:
    mine = await topics.subscribed_topics(db_session, account)
    return [
        TopicOut(name=t.name, title=t.title, title_en=t.title_en, core=t.core, subscribed=t.name in mine)
        for t in await topics.list_topics(db_session)
    ]


@get("/topics", guards=[authenticated], summary="Topics offered here, and whether you subscribed")
async def list_topics(
    request: Request[Any, Any, Any], platform: PlatformDep, db_session: DbSession
) -> list[TopicOut]:
    return await _topics_out(db_session, await _account(platform, request))


@put("/subscriptions/{topic:str}", guards=[authenticated], summary="Subscribe to a topic")
async def subscribe(
    request: Request[Any, Any, Any], platform: PlatformDep, db_session: DbSession, topic: FromPath[str]
) -> TopicOut:
    account = await _account(platform, request)
    await topics.subscribe(db_session, account, topic)
    return next(t for t in await _topics_out(db_session, account) if t.name == topic)


@delete("/subscriptions/{topic:str}", status_code=204, guards=[authenticated], summary="Unsubscribe")
async def unsubscribe(
    request: Request[Any, Any, Any], platform: PlatformDep, db_session: DbSession, topic: FromPath[str]
) -> None:
    await topics.unsubscribe(db_session, await _account(platform, request), topic)


# --- staff ----------------------------------------------------------------------------------------------------


@post(
    "/topics/{topic:str}/send",
    status_code=202,
    guards=[requires("core.send_notifications")],
    summary="Send one message to everyone subscribed to a topic here",
)
async def send_to_topic(
    request: Request[Any, Any, Any],
    platform: PlatformDep,
    db_session: DbSession,
    topic: FromPath[str],
    data: JSONBody[TopicSendRequest],
) -> TopicSendOut:
    return await broadcast.send_to_topic(
        db_session,
        topic=topic,
        template=data.template,
        context=data.context,
        subject=data.subject,
        body=data.body,
        key=data.key,
        actor=await _actor(platform, request),
    )


@get(
    "/sends/{send_id:uuid}", guards=[requires("core.send_notifications")], summary="How far a topic send got"
)
async def get_send(db_session: DbSession, send_id: FromPath[uuid.UUID]) -> TopicSendOut:
    return await broadcast.topic_send_status(db_session, send_id)


# --- administrators -------------------------------------------------------------------------------------------


@post(
    "/topics",
    status_code=201,
    guards=[requires("core.manage_topics")],
    summary="Offer a topic of this town's own",
)
async def add_topic(
    request: Request[Any, Any, Any], platform: PlatformDep, db_session: DbSession, data: JSONBody[TopicCreate]
) -> TopicOut:
    added = await topics.add_topic(
        db_session,
        name=data.name,
        title=data.title,
        title_en=data.title_en,
        actor=await _actor(platform, request),
    )
    return TopicOut(name=added.name, title=added.title, title_en=added.title_en, core=False, subscribed=False)


@delete(
    "/topics/{topic:str}", status_code=204, guards=[requires("core.manage_topics")], summary="Remove a topic"
)
async def remove_topic(
    request: Request[Any, Any, Any], platform: PlatformDep, db_session: DbSession, topic: FromPath[str]
) -> None:
    await topics.remove_topic(db_session, topic, actor=await _actor(platform, request))


@get("/webhooks", guards=[requires("core.manage_webhooks")], summary="The town's webhook endpoints")
async def list_webhooks(db_session: DbSession) -> list[WebhookOut]:
    return await webhooks.list_webhooks(db_session)


@post(
    "/webhooks",
    status_code=201,
    guards=[requires("core.manage_webhooks")],
    summary="Register a webhook endpoint (its secret is in this answer only)",
)
async def create_webhook(
    request: Request[Any, Any, Any],
    platform: PlatformDep,
    db_session: DbSession,
    data: JSONBody[WebhookCreate],
) -> WebhookCreated:
    return await webhooks.create_webhook(
        db_session,
        platform,
        name=data.name,
        url=data.url,
        templates=data.templates,
        topics=data.topics,
        actor=await _actor(platform, request),
    )


@delete(
    "/webhooks/{endpoint_id:uuid}",
    status_code=204,
    guards=[requires("core.manage_webhooks")],
    summary="Stop sending to a webhook endpoint",
)
async def remove_webhook(
    request: Request[Any, Any, Any],
    platform: PlatformDep,
    db_session: DbSession,
    endpoint_id: FromPath[uuid.UUID],
) -> None:
    await webhooks.remove_webhook(db_session, endpoint_id, actor=await _actor(platform, request))


def notifications_router() -> Router:
    """The ``/notifications`` routes (a fresh router for each app)."""
    return Router(
        path="/notifications",
        route_handlers=[
            list_inbox,
            unread_count,
            mark_read,
            mark_all_read,
            get_preferences,
            put_preferences,
            list_topics,
            subscribe,
            unsubscribe,
            send_to_topic,
            get_send,
            add_topic,
            remove_topic,
            list_webhooks,
            create_webhook,
            remove_webhook,
        ],
        tags=["notifications"],
    )
