"""Why a transition did not happen: its guard refused (422), or it cannot apply now (409).

The 409's problem+json names where the object is now: a client that lost a race (or asked for a move from the
wrong state) learns the current ``state``, its ``version`` and the transitions ``allowed`` from there, so it can
show them or retry with the right version.
"""

from __future__ import annotations

from typing import Any

from core.exceptions import Conflict, InvalidInput
from core.http.problems import Problem, problem_type
from core.markers import hookimpl


class TransitionConflict(Conflict):
    """The object is not in a state the transition leaves, or another transition got there first."""

    title = "Transition not possible now"

    def __init__(self, detail: str, *, state: str, version: int, allowed: list[str]) -> None:
        super().__init__(detail, state=state, version=version, allowed=allowed)
        self.state = state
        self.version = version
        self.allowed = allowed


class GuardRefused(InvalidInput):
    """A transition's guard refused it; the detail is the guard's reason (422)."""

    title = "Refused"


class TransitionProblem(Problem, kw_only=True, omit_defaults=True):
    """RFC 9457 problem with the extension members ``state``, ``version`` and ``allowed``."""

    state: str
    version: int
    allowed: list[str]


class WorkflowDefaults:
    """The core's answer for :class:`TransitionConflict`; registered among the core's default plugins."""

    @hookimpl
    def problem_for_exception(self, exception: BaseException, municipality: Any) -> Problem | None:
        if not isinstance(exception, TransitionConflict):
            return None
        return TransitionProblem(
            type=problem_type("transition-conflict"),
            title=exception.title,
            status=exception.status_code,
            detail=exception.detail,
            state=exception.state,
            version=exception.version,
            allowed=list(exception.allowed),
        )
