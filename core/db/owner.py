"""Which :class:`~core.platform.Platform` a session belongs to.

Core services that are handed only a session (``core.workflow.fire``, ``core.notifications.notify``) need the
platform's declared permissions, plugins and tenant snapshot. They find it through the session's engine, as the
audit log finds its keys.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

from core.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from core.platform import Platform

_PLATFORMS: weakref.WeakKeyDictionary[Any, weakref.ReferenceType[Platform]] = weakref.WeakKeyDictionary()


def _sync_engine(bind: Any) -> Any:
    bind = getattr(bind, "sync_engine", bind)
    return getattr(bind, "engine", bind)


def bind_platform(engine: Any, platform: Platform) -> None:
    """Let sessions on ``engine`` find ``platform`` (called when a :class:`~core.platform.Platform` is made).

    A second platform made on the same engine leaves the first one bound while it lives."""
    key = _sync_engine(engine)
    bound = _PLATFORMS.get(key)
    if bound is None or bound() is None:
        _PLATFORMS[key] = weakref.ref(platform)


def platform_of(session: Any) -> Platform:
    """:raises ImproperlyConfigured: the session's engine was not made by a platform."""
    ref = _PLATFORMS.get(_sync_engine(session.get_bind()))
    platform = ref() if ref is not None else None
    if platform is None:
        raise ImproperlyConfigured(
            "this session's engine belongs to no platform: open sessions through a Platform"
        )
    return platform
