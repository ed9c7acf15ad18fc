"""The reservation's life, declared for the core workflow engine (``booking.reservation``).

::

    held ──win (lottery draw)──▶ won
    held ──confirm──▶ confirmed ◀──approve── review ◀──submit── held
      │                  ▲                     │
      └─expire (timer)   └──accept── won       └─reject─▶ rejected
    any live state ──cancel (resident, until the deadline) / revoke (staff)──▶ cancelled
    won ──lapse (timer: winner did not confirm)──▶ expired

A reservation occupies its units while it is held, in review, won or confirmed; the database releases them
when it leaves those states (see the migration), whoever fired the transition.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from core import Title
from core.db.base import utcnow
from core.workflow import Notify, Timer, Transition, Workflow
from plugins.booking.models import Reservation

HOLD_MINUTES = 30
"""An unconfirmed hold (仮予約) expires after this long, and the slot is free again."""
WIN_CONFIRM_DAYS = 7
"""A lottery winner who has not confirmed within this many days loses the slot to first-come booking."""

STATES = {
    "held": Title(ja="仮予約", en="Held"),
    "review": Title(ja="審査中", en="In review"),
    "won": Title(ja="当選（確認待ち）", en="Won, to confirm"),
    "confirmed": Title(ja="予約確定", en="Confirmed"),
    "cancelled": Title(ja="取消", en="Cancelled"),
    "expired": Title(ja="期限切れ", en="Expired"),
    "rejected": Title(ja="不承認", en="Rejected"),
}
LIVE = ("held", "review", "won", "confirmed")


def _person(reservation: Reservation) -> list[Any]:
    return [reservation.account_id] if reservation.account_id is not None else []


def _context(reservation: Reservation) -> dict[str, Any]:
    return {
        "place": reservation.place,
        "when": reservation.local_time,
        "fee": reservation.fee,
        "kind": reservation.kind,
    }


def _no_review(_session: Any, reservation: Reservation, _actor: Any) -> str | None:
    if reservation.needs_review:
        return "this booking needs staff review (審査): submit it instead"
    return None


def _needs_review(_session: Any, reservation: Reservation, _actor: Any) -> str | None:
    if not reservation.needs_review:
        return "this booking needs no review: confirm it"
    return None


def _before_deadline(_session: Any, reservation: Reservation, _actor: Any) -> str | None:
    if reservation.cancel_until is not None and utcnow() > reservation.cancel_until:
        return (
            f"the cancellation deadline passed at {reservation.cancel_until.isoformat()}: "
            "ask the facility to cancel"
        )
    return None


CONFIRMED = Notify(template="booking.confirmed", to=_person, context=_context)
CANCELLED = Notify(template="booking.cancelled", to=_person, context=_context)

RESERVATION = Workflow(
    name="booking.reservation",
    model=Reservation,
    states=STATES,
    initial="held",
    transitions=(
        Transition(
            "confirm",
            source=("held",),
            target="confirmed",
            permission="booking.reserve",
            guard=_no_review,
            notify=(CONFIRMED,),
        ),
        Transition(
            "submit", source=("held",), target="review", permission="booking.reserve", guard=_needs_review
        ),
        Transition(
            "approve",
            source=("review",),
            target="confirmed",
            permission="booking.manage",
            notify=(CONFIRMED,),
        ),
        Transition(
            "reject",
            source=("review",),
            target="rejected",
            permission="booking.manage",
            notify=(Notify(template="booking.rejected", to=_person, context=_context),),
        ),
        Transition("win", source=("held",), target="won"),
        Transition(
            "accept", source=("won",), target="confirmed", permission="booking.reserve", notify=(CONFIRMED,)
        ),
        Transition(
            "cancel",
            source=LIVE,
            target="cancelled",
            permission="booking.reserve",
            guard=_before_deadline,
            notify=(CANCELLED,),
        ),
        Transition(
            "revoke", source=LIVE, target="cancelled", permission="booking.manage", notify=(CANCELLED,)
        ),
        Transition("expire", source=("held",), target="expired"),
        Transition("lapse", source=("won",), target="expired"),
    ),
    timers=(
        Timer(state="held", after=timedelta(minutes=HOLD_MINUTES), fire="expire"),
        Timer(state="won", after=timedelta(days=WIN_CONFIRM_DAYS), fire="lapse"),
    ),
)
