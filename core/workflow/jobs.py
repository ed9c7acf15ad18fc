"""The core job that fires workflow timers: ``core.fire_workflow_timer``.

Queued through the outbox by :func:`core.workflow.start` and :func:`core.workflow.fire` with ``not_before`` set
to when the timer is due. It fires the timer's transition only if the object is still in the state, at the
version, it was scheduled for; otherwise it does nothing (the object moved on, and that move cancelled it).
Running it twice is harmless for the same reason.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import structlog

from core.jobs import job
from core.workflow.engine import fire_timer

if TYPE_CHECKING:
    from core.jobs import JobContext

log = structlog.get_logger(__name__)


@job(queue="default", max_retries=10)
async def fire_workflow_timer(
    ctx: JobContext, *, workflow: str, object_id: Any, state: str, version: int, transition: str
) -> None:
    """Fire ``transition`` on ``object_id`` if it is still in ``state`` at ``version``.

    Like a plugin's own jobs, it does nothing where the workflow's plugin is no longer enabled.
    """
    declared = ctx.platform.workflows.find(workflow)
    if declared is None:
        log.warning("workflow.timer_skipped", workflow=workflow, reason="no such workflow is loaded")
        return
    if not ctx.platform.is_enabled(ctx.municipality, declared.plugin):
        log.warning(
            "workflow.timer_skipped", workflow=workflow, reason=f"{declared.plugin} is not enabled here"
        )
        return
    async with ctx.session() as session:
        fired = await fire_timer(
            session, declared, object_id, state=state, version=version, transition=transition
        )
    log.info("workflow.timer_done", workflow=workflow, transition=transition, fired=fired)


JOBS = [fire_workflow_timer]
