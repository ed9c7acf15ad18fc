"""What the currency routes share: who is calling, idempotent value-moving requests, dates, settings."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
from litestar import Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from core.audit import actor_for
from core.exceptions import Forbidden, InvalidInput
from core.identity.authn import authenticate
from core.identity.guards import is_allowed
from core.identity.principal import Principal
from core.platform import Platform
from core.tenancy.registry import Municipality
from plugins.currency import services
from plugins.currency.config import CurrencySettings

IDEMPOTENCY_HEADER = "idempotency-key"
REPLAYED_HEADER = "idempotent-replayed"
JSON = "application/json"


def settings_of(platform: Platform, municipality: Municipality) -> CurrencySettings:
    return platform.plugin_settings(municipality, "currency")


def zone(municipality: Municipality) -> ZoneInfo:
    return ZoneInfo(municipality.timezone)


async def caller(platform: Platform, request: Request[Any, Any, Any]) -> tuple[Principal, str]:
    principal = await authenticate(platform, request)
    return principal, actor_for(principal)


def person_of(principal: Principal) -> uuid.UUID:
    """:raises Forbidden: the caller is a system (an API key), which holds no wallet."""
    if principal.account_id is None:
        raise Forbidden("a wallet belongs to a person: sign in, or use a person's access token")
    return principal.account_id


async def require_shop_access(
    platform: Platform,
    municipality: Municipality,
    session: AsyncSession,
    principal: Principal,
    merchant_id: uuid.UUID,
) -> None:
    """A shop's till is worked by its members, and by those who manage the currency.

    :raises NotFound: no such shop. :raises Forbidden: neither.
    """
    await services.get_merchant(session, merchant_id)
    if await services.is_member(session, merchant_id, principal.account_id):
        return
    if is_allowed(platform, principal, municipality, "currency.manage"):
        return
    raise Forbidden("only the shop's own staff (or the currency's managers) may do this")


def parse_date(value: str, field: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{field}: expected a date such as 2026-03-31, got {value!r}") from None


async def idempotently(
    request: Request[Any, Any, Any],
    session: AsyncSession,
    actor: str,
    body: Any,
    run: Callable[[], Awaitable[msgspec.Struct]],
    *,
    status_code: int = 201,
) -> Response[bytes]:
    """Run a value-moving request once per ``Idempotency-Key``: a repeat gets the first answer again
    (with ``Idempotent-Replayed: true``) and moves nothing.

    :raises InvalidInput: no key, a malformed key, or the key used before for a different request.
    """
    key = services.check_key(request.headers.get(IDEMPOTENCY_HEADER))
    fingerprint = services.request_hash(request.method, request.url.path, body)
    replay = await services.claim(session, caller=actor, key=key, fingerprint=fingerprint)
    if replay is not None:
        return Response(
            content=replay.body,
            status_code=replay.status_code,
            media_type=JSON,
            headers={REPLAYED_HEADER: "true"},
        )
    encoded = msgspec.json.encode(await run())
    await services.remember(session, caller=actor, key=key, status_code=status_code, body=encoded)
    return Response(content=encoded, status_code=status_code, media_type=JSON)
