"""The admin API of the audit log: ``GET /audit/events`` of each municipality (``core.read_audit``)."""

from __future__ import annotations

from datetime import datetime

from litestar import Router, get
from litestar.params import FromQuery

from core.audit.query import DEFAULT_LIMIT, AuditEventPage, AuditFilter, search_events
from core.http.dependencies import DbSession
from core.identity.guards import requires


@get(
    "/events",
    guards=[requires("core.read_audit")],
    summary="Audit events of the municipality, newest first",
    description="Filter by actor, action (exact, or `<plugin>.*`), target and time (`since` inclusive, `until` "
    "exclusive, ISO 8601 with an offset); page with `limit` (1-500) and the `next_cursor` of the previous page.",
)
async def list_audit_events(
    db_session: DbSession,
    actor: FromQuery[str | None] = None,
    action: FromQuery[str | None] = None,
    target_type: FromQuery[str | None] = None,
    target_id: FromQuery[str | None] = None,
    since: FromQuery[datetime | None] = None,
    until: FromQuery[datetime | None] = None,
    limit: FromQuery[int] = DEFAULT_LIMIT,
    cursor: FromQuery[str | None] = None,
) -> AuditEventPage:
    found = AuditFilter(
        actor=actor, action=action, target_type=target_type, target_id=target_id, since=since, until=until
    )
    return await search_events(db_session, found, limit=limit, cursor=cursor)


def audit_router() -> Router:
    return Router(path="/audit", route_handlers=[list_audit_events], tags=["audit"])
