"""Who may fire a transition: its permission, checked for the actor in the session's municipality.

:func:`core.workflow.fire` is given a session, not the platform; the platform (declared permissions, the
municipality's grants) is found through the session's engine (:func:`core.db.owner.platform_of`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.db.owner import platform_of
from core.db.session import bound_municipality
from core.exceptions import CrossTenantAccess, Forbidden, NotAuthenticated
from core.identity.guards import is_allowed

if TYPE_CHECKING:
    from core.identity.principal import Principal
    from core.workflow.declarations import Transition, Workflow


def municipality_id_of(session: Any) -> int:
    """:raises CrossTenantAccess: the session is not bound to a municipality."""
    bound = bound_municipality(session)
    if bound is None:
        raise CrossTenantAccess("workflows run in a session bound to a municipality")
    return bound


def authorise(session: Any, workflow: Workflow, step: Transition, actor: Principal | None) -> None:
    """``actor`` ``None`` is the platform itself (a timer, a job): it may fire anything.

    :raises Forbidden: a person or key firing a platform-only transition, or lacking its permission (a
        credential of another municipality included).
    :raises NotAuthenticated: an anonymous actor and a transition that needs a permission.
    """
    if actor is None:
        return
    if step.permission is None:
        raise Forbidden(f"{workflow.name}: {step.name} is done by the platform only, not on request")
    if not actor.is_authenticated:
        raise NotAuthenticated(f"log in or send a credential to {step.name} ({step.permission})")
    platform = platform_of(session)
    municipality = platform.snapshot.by_id.get(municipality_id_of(session))
    if municipality is None or not is_allowed(platform, actor, municipality, step.permission):
        where = municipality.slug if municipality is not None else "this municipality"
        raise Forbidden(f"you need the permission {step.permission} in {where} to {step.name}")
