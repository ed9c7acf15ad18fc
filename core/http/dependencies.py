"""Dependencies plugin handlers ask for by name: ``municipality``, ``db_session``, ``platform``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, TypeAlias

from litestar import Request
from litestar.di import NamedDependency, Provide
from sqlalchemy.ext.asyncio import AsyncSession

from core.exceptions import UnknownMunicipality
from core.platform import Platform
from core.tenancy.registry import Municipality

PlatformDep: TypeAlias = NamedDependency[Platform]
"""Annotate a handler parameter named ``platform`` with this to receive the :class:`Platform`."""
MunicipalityDep: TypeAlias = NamedDependency[Municipality]
"""Annotate a parameter named ``municipality`` with this to receive the bound municipality."""
DbSession: TypeAlias = NamedDependency[AsyncSession]
"""Annotate a parameter named ``db_session`` with this to receive a session bound to the municipality."""


def provide_platform(request: Request[Any, Any, Any]) -> Platform:
    return request.app.state.platform


def provide_municipality(request: Request[Any, Any, Any], platform: PlatformDep) -> Municipality:
    """The municipality this request is bound to. Handlers that ask for it are never reached unbound.

    ``platform`` is not used: asking for it puts the three dependencies in a chain (platform, municipality,
    db_session). Litestar resolves the dependencies of one level concurrently in a task group, which costs a
    request more than these lookups themselves.
    """
    del platform
    municipality = request.scope.get("state", {}).get("municipality")
    if municipality is None:
        raise UnknownMunicipality("this route is served per municipality: use its host or /m/<slug>/")
    return municipality


async def provide_db_session(
    platform: PlatformDep, municipality: MunicipalityDep
) -> AsyncIterator[AsyncSession]:
    """A session bound to the request's municipality; committed when the handler returns, else rolled back."""
    async with platform.sessions.tenant(municipality.id) as session:
        yield session


DEPENDENCIES = {
    "platform": Provide(provide_platform, sync_to_thread=False),
    "municipality": Provide(provide_municipality, sync_to_thread=False),
    "db_session": Provide(provide_db_session),
}
