"""Running a workflow: :func:`start` an object, :func:`fire` a transition on it.

Everything happens in the caller's transaction: the state change, its audit event, the timers of the new state
(outbox messages to the core job ``core.fire_workflow_timer``) and its notifications. Roll back and none of it
happened; commit and all of it did. Each runs in a savepoint too, so one that fails half-way (a notification
context that is not JSON, a missing template) leaves nothing behind even if the caller catches the error and
commits the rest of its work.

Concurrency is optimistic: ``UPDATE ... SET state = :target, state_version = :v + 1 WHERE id = :id AND
state_version = :v``. Of two transitions racing on one object exactly one updates the row; the other updates
nothing and raises :class:`~core.workflow.problems.TransitionConflict` (409) naming the state the winner left
the object in. Timers of an old state are never cancelled: each carries the version it was scheduled for and
does nothing once the object has moved on.
"""

from __future__ import annotations

import hashlib
import inspect
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import inspect as orm_inspect
from sqlalchemy import select, update

from core.audit import actor_for, record
from core.db.base import utcnow
from core.exceptions import Conflict, NotFound
from core.notifications import notify
from core.outbox import send_later
from core.workflow.access import authorise, municipality_id_of
from core.workflow.declarations import START, Transition, Workflow
from core.workflow.problems import GuardRefused, TransitionConflict

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from core.identity.principal import Principal

log = structlog.get_logger(__name__)

TIMER_JOB = "core.fire_workflow_timer"
TIMER_ACTOR = "job:core.fire_workflow_timer"
"""The audit actor of a transition a timer fired."""
MAX_KEY = 160
"""Idempotency keys are kept within what both the outbox and the notifications take."""


async def start(session: AsyncSession, workflow: Workflow, obj: Any, *, actor: Principal | None) -> None:
    """Put a new object in the initial state (version 1), audit it, schedule the initial state's timers.

    The object is added to the session and flushed (so it has its id). ``actor`` is recorded as who started it
    (``None``: the platform); who may create such objects is the caller's route or command to decide.

    :raises Conflict: the object was started already.
    """
    _check_model(workflow, obj)
    municipality_id_of(session)
    if orm_inspect(obj).persistent:
        raise Conflict(f"{workflow.name} {obj.id}: already started (state {obj.state})")
    obj.state = workflow.initial
    obj.state_version = 1
    async with session.begin_nested():  # the object, its audit event and its timers, or none of them
        session.add(obj)
        await session.flush()
        record(
            session,
            actor=_actor(actor),
            action=f"{workflow.name}_{START}",
            target_type=workflow.target_type,
            target_id=obj.id,
            payload={"workflow": workflow.name, "transition": START, "to": workflow.initial, "version": 1},
        )
        await _schedule_timers(session, workflow, obj)


async def fire(
    session: AsyncSession,
    workflow: Workflow,
    obj_or_id: Any,
    transition: str,
    *,
    actor: Principal | None,
    expected_version: int | None = None,
    payload: Mapping[str, Any] | None = None,
) -> Any:
    """Apply a transition atomically; returns the updated object.

    Checks, in order: the transition exists (422), the object exists in the session's municipality (404), the
    actor may fire it (401/403), the object is in one of its source states at the expected version (409), its
    guard (422). Then the conditional UPDATE (409 if another transition won meanwhile), the audit event, the new
    state's timers and the transition's notifications.

    :param obj_or_id: the object (as the caller read it: its version is the one expected) or its id.
    :param actor: the caller (:class:`~core.identity.principal.Principal`); ``None`` is the platform itself.
    :param expected_version: apply only to this version (what the client saw); default: the object's.
    :param payload: a small JSON object of references recorded with the audit event and given to
        notification templates as ``data`` (e.g. a reason code); no personal data.
    :raises InvalidInput: no such transition.
    :raises GuardRefused: (an ``InvalidInput``, 422) its guard refused; the guard's reason is the detail.
    :raises NotFound: no such object in the session's municipality.
    :raises NotAuthenticated: an anonymous actor, for a transition that needs a permission.
    :raises Forbidden: the actor lacks the transition's permission, or the transition is the platform's only.
    :raises TransitionConflict: (409) wrong state or version, or lost the race; names the current state.
    """
    return await _apply(
        session,
        workflow,
        obj_or_id,
        transition,
        actor=actor,
        audit_actor=_actor(actor),
        expected_version=expected_version,
        payload=payload,
    )


async def fire_timer(
    session: AsyncSession, workflow: Workflow, object_id: Any, *, state: str, version: int, transition: str
) -> bool:
    """Fire a timer's transition if the object is still in ``state`` at ``version``; whether it fired.

    Anything else (the object moved on, is gone, a person's transition won the race, the guard refused) is
    not an error: the timer is simply no longer due. Other errors propagate, and the job is retried.
    """
    obj = await _load(session, workflow, _decode_id(workflow, object_id), missing_ok=True)
    if obj is None or obj.state != state or obj.state_version != version:
        return False
    try:
        await _apply(
            session,
            workflow,
            obj,
            transition,
            actor=None,
            audit_actor=TIMER_ACTOR,
            expected_version=version,
            payload=None,
        )
    except TransitionConflict:
        return False
    except GuardRefused as exc:
        log.info("workflow.timer_refused", workflow=workflow.name, transition=transition, reason=exc.detail)
        return False
    return True


async def _apply(
    session: AsyncSession,
    workflow: Workflow,
    obj_or_id: Any,
    transition: str,
    *,
    actor: Principal | None,
    audit_actor: str,
    expected_version: int | None,
    payload: Mapping[str, Any] | None,
) -> Any:
    """:func:`fire`, with the audit actor given (a timer records itself, not ``system``)."""
    step = workflow.transition(transition)
    municipality_id_of(session)
    if isinstance(obj_or_id, workflow.model):
        seen = obj_or_id.state_version
        obj = await _load(session, workflow, obj_or_id.id)
    else:
        obj = await _load(session, workflow, _decode_id(workflow, obj_or_id))
        seen = obj.state_version
    authorise(session, workflow, step, actor)
    version = seen if expected_version is None else expected_version
    source = obj.state
    if source not in step.source or obj.state_version != version:
        raise _conflict(workflow, obj, step, expected=version)
    await _run_guard(session, workflow, step, obj, actor)
    async with session.begin_nested():  # all of the transition or none of it, even if the caller carries on
        updated = await session.scalar(
            update(workflow.model)
            .where(workflow.model.id == obj.id, workflow.model.state_version == version)
            .values(state=step.target, state_version=version + 1)
            .returning(workflow.model)
            .execution_options(populate_existing=True, synchronize_session=False)
        )
        if updated is not None:
            await _record_and_follow_up(session, workflow, step, updated, source, payload, audit_actor)
    if updated is None:  # another transaction moved it since we read it
        raise _conflict(workflow, await _load(session, workflow, obj.id), step, expected=version)
    return updated


async def _record_and_follow_up(
    session: AsyncSession,
    workflow: Workflow,
    step: Transition,
    obj: Any,
    source: str,
    payload: Mapping[str, Any] | None,
    audit_actor: str,
) -> None:
    """The audit event, the new state's timers and the transition's notifications of an applied transition."""
    data = dict(payload) if payload is not None else None
    body: dict[str, Any] = {
        "workflow": workflow.name,
        "transition": step.name,
        "from": source,
        "to": step.target,
        "version": obj.state_version,
    }
    if data is not None:
        body["data"] = data
    record(
        session,
        actor=audit_actor,
        action=f"{workflow.name}_{step.name}",
        target_type=workflow.target_type,
        target_id=obj.id,
        payload=body,
    )
    await _schedule_timers(session, workflow, obj)
    await _notify(session, workflow, step, obj, source, data, audit_actor)


# --- helpers --------------------------------------------------------------------------------------------------


def _actor(actor: Principal | None) -> str:
    return "system" if actor is None else actor_for(actor)


def _check_model(workflow: Workflow, obj: Any) -> None:
    if not isinstance(obj, workflow.model):
        raise TypeError(f"{workflow.name} runs on {workflow.model.__name__}, got {type(obj).__name__}")


def _decode_id(workflow: Workflow, value: Any) -> Any:
    """An id as given on the wire or in a job's arguments, as the model's ``id`` column takes it."""
    python_type = workflow.model.id.type.python_type
    if isinstance(value, python_type):
        return value
    try:
        return python_type(value)
    except (TypeError, ValueError):
        raise NotFound(f"{workflow.name}: no object with id {str(value)[:80]!r}") from None


async def _load(
    session: AsyncSession, workflow: Workflow, object_id: Any, *, missing_ok: bool = False
) -> Any:
    """The object as committed now (pending changes of the session flushed first, then read back).

    The session's municipality filter applies: another municipality's object is simply not found.
    """
    obj = await session.scalar(
        select(workflow.model).where(workflow.model.id == object_id).execution_options(populate_existing=True)
    )
    if obj is None and not missing_ok:
        raise NotFound(f"{workflow.name}: no object with id {object_id}")
    return obj


def _conflict(workflow: Workflow, obj: Any, step: Transition, *, expected: int) -> TransitionConflict:
    state, version = obj.state, obj.state_version
    allowed = workflow.leaving(state)
    if version != expected:
        why = f"it changed meanwhile (version {version}, expected {expected})"
    else:
        why = f"{step.name} leaves only {', '.join(step.source)}"
    return TransitionConflict(
        f"{workflow.name} {obj.id} is {state}: cannot {step.name}, {why}",
        state=state,
        version=version,
        allowed=allowed,
    )


async def _run_guard(
    session: AsyncSession, workflow: Workflow, step: Transition, obj: Any, actor: Principal | None
) -> None:
    if step.guard is None:
        return
    reason = step.guard(session, obj, actor)
    if inspect.isawaitable(reason):
        reason = await reason
    if reason:
        raise GuardRefused(str(reason), workflow=workflow.name, transition=step.name)


def _key(workflow: Workflow, obj: Any, what: str) -> str:
    """``workflow:<name>:<id>:<version>:<what>``: one per entry into a state; a digest when that is too long."""
    key = f"workflow:{workflow.name}:{obj.id}:{obj.state_version}:{what}"
    if len(key) <= MAX_KEY:
        return key
    return f"workflow:{workflow.name[:60]}:{hashlib.sha256(key.encode()).hexdigest()}"


def _encode_id(value: Any) -> Any:
    return value if isinstance(value, int | str) else str(value)


async def _schedule_timers(session: AsyncSession, workflow: Workflow, obj: Any) -> None:
    timers = workflow.timers_for(obj.state)
    if not timers:
        return
    now = utcnow()
    for timer in timers:
        await send_later(
            session,
            TIMER_JOB,
            key=_key(workflow, obj, timer.fire),
            not_before=now + timer.after,
            workflow=workflow.name,
            object_id=_encode_id(obj.id),
            state=obj.state,
            version=obj.state_version,
            transition=timer.fire,
        )


async def _notify(
    session: AsyncSession,
    workflow: Workflow,
    step: Transition,
    obj: Any,
    source: str,
    data: dict[str, Any] | None,
    actor: str,
) -> None:
    if not step.notify:
        return
    title = workflow.states[obj.state]
    defaults: dict[str, Any] = {
        "workflow": workflow.name,
        "id": str(obj.id),
        "transition": step.name,
        "from_state": source,
        "state": obj.state,
        "state_title": {"ja": title.ja, "en": title.en},
        "version": obj.state_version,
        "data": data or {},
    }
    for message in step.notify:
        to = list(dict.fromkeys(uuid.UUID(str(a)) for a in (message.to(obj) or ()) if a is not None))
        if not to:
            continue
        context = {**defaults, **(dict(message.context(obj)) if message.context is not None else {})}
        await notify(
            session,
            template=message.template,
            to=to,
            context=context,
            key=_key(workflow, obj, message.template),
            channels=message.channels,
            actor=actor,
        )
