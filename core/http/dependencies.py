"""Dependencies plugin handlers ask for by name: ``municipality``, ``db_session``, ``platform``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from litestar import Request
from litestar.di import Provide
from sqlalchemy.ext.asyncio import AsyncSession

from core.exceptions import UnknownMunicipality
from core.platform import Platform
from core.tenancy.registry import Municipality


def provide_platform(request: Request[Any, Any, Any]) -> Platform:
    return request.app.state.platform


def provide_municipality(request: Request[Any, Any, Any]) -> Municipality:
    """The municipality this request is bound to. Handlers that ask for it are never reached unbound."""
    municipality = request.scope.get("state", {}).get("municipality")
    if municipality is None:
        raise UnknownMunicipality("this route is served per municipality: use its host or /m/<slug>/")
    return municipality


async def provide_db_session(
    platform: Platform, municipality: Municipality
) -> AsyncIterator[AsyncSession]:
    """A session bound to the request's municipality; committed when the handler returns, else rolled back."""
    async with platform.sessions.tenant(municipality.id) as session:
        yield session


DEPENDENCIES = {
    "platform": Provide(provide_platform, sync_to_thread=False),
    "municipality": Provide(provide_municipality, sync_to_thread=False),
    "db_session": Provide(provide_db_session),
}
