"""The draw is a pure function of the applications and the seed: the same seed gives the same winners, no slot
(nor a part of it and its whole) is won twice, nobody wins more than allowed, and only wishes win."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from plugins.booking.services._lottery import Applicant, Span, Wish, draw

T0 = datetime(2027, 1, 16, 0, tzinfo=UTC)
OCCUPIES = {"whole": frozenset({"whole", "a", "b"}), "a": frozenset({"a"}), "b": frozenset({"b"})}

wishes = st.lists(
    st.tuples(st.sampled_from(["whole", "a", "b"]), st.integers(0, 5)), min_size=1, max_size=3, unique=True
)
applicants = st.lists(wishes, min_size=1, max_size=8)
seeds = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)


def build(raw: list[list[tuple[str, int]]]) -> list[Applicant]:
    return [
        Applicant(
            id=f"app-{i}",
            wishes=[
                Wish(
                    id=f"w-{i}-{rank}",
                    rank=rank,
                    unit_id=unit,
                    starts_at=T0 + timedelta(hours=h),
                    ends_at=T0 + timedelta(hours=h + 1),
                )
                for rank, (unit, h) in enumerate(ws, start=1)
            ],
        )
        for i, ws in enumerate(raw)
    ]


@given(raw=applicants, seed=seeds, max_wins=st.integers(1, 3))
def test_the_draw_is_fair_by_the_rules_and_reproducible(
    raw: list[list[tuple[str, int]]], seed: str, max_wins: int
) -> None:
    people = build(raw)
    winners = draw(people, seed, occupies=OCCUPIES, buffers={}, max_wins=max_wins)
    assert winners == draw(list(reversed(people)), seed, occupies=OCCUPIES, buffers={}, max_wins=max_wins)
    by_id = {w.id: (a.id, w) for a in people for w in a.wishes}
    assert set(winners) <= set(by_id)
    won = [by_id[w][1] for w in winners]
    for i, x in enumerate(won):
        for y in won[i + 1 :]:
            shared = OCCUPIES[x.unit_id] & OCCUPIES[y.unit_id]
            assert not (shared and x.starts_at < y.ends_at and y.starts_at < x.ends_at)
    per_person = [by_id[w][0] for w in winners]
    assert all(per_person.count(p) <= max_wins for p in per_person)
    if people and any(a.wishes for a in people):
        assert winners  # someone always wins when anyone applied and nothing is blocked


@given(raw=applicants, seed=seeds)
def test_what_is_blocked_is_never_won(raw: list[list[tuple[str, int]]], seed: str) -> None:
    blocked = [Span(units=frozenset({"a", "b", "whole"}), starts_at=T0, ends_at=T0 + timedelta(hours=6))]
    assert draw(build(raw), seed, occupies=OCCUPIES, buffers={}, blocked=blocked) == []


def test_another_seed_can_change_the_order() -> None:
    people = build([[("whole", 1)] for _ in range(6)])
    firsts = {draw(people, f"{n:064x}", occupies=OCCUPIES, buffers={})[0] for n in range(20)}
    assert len(firsts) > 1
