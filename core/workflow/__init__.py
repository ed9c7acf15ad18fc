"""Workflows: state machines that plugins declare and the core runs.

A plugin declares a :class:`Workflow` (states, :class:`Transition` s with the permission each needs and an
optional guard, :class:`Timer` s, :class:`Notify` s) over an ORM model carrying :class:`StatefulMixin`, and
returns it from the hook ``register_workflows``. The core then:

- :func:`start` puts a new object in the initial state;
- :func:`fire` applies a transition atomically with optimistic concurrency (a lost race is a 409
  :class:`TransitionConflict` naming the current state and the transitions allowed from it), audits it,
  schedules the new state's timers through the outbox and queues its notifications, all in the caller's
  transaction;
- the core job ``core.fire_workflow_timer`` (:mod:`core.workflow.jobs`) fires a timer's transition when it is
  due, unless the object moved on.

``tsunagu workflow list | show NAME [--mermaid]`` prints them. See ``docs/workflow.md``.
"""

from core.workflow.declarations import Guard, Notify, StatefulMixin, Timer, Transition, Workflow
from core.workflow.describe import WorkflowInfo, describe, mermaid
from core.workflow.engine import fire, fire_timer, start
from core.workflow.problems import GuardRefused, TransitionConflict, TransitionProblem
from core.workflow.registry import WorkflowRegistry, collect_workflows, workflows_of

__all__ = [
    "Guard",
    "GuardRefused",
    "Notify",
    "StatefulMixin",
    "Timer",
    "Transition",
    "TransitionConflict",
    "TransitionProblem",
    "Workflow",
    "WorkflowInfo",
    "WorkflowRegistry",
    "collect_workflows",
    "describe",
    "fire",
    "fire_timer",
    "mermaid",
    "start",
    "workflows_of",
]
