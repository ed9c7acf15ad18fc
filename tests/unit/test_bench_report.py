"""The benchmark's arithmetic and verdicts: percentiles, sums of runs, goals, the table and results.json."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.comparison import interleaved, split
from bench.report import Figure, Row, at_least, below, render_table, write_results
from bench.stats import LoadRun, Measured, combine, percentile

latencies = st.lists(st.floats(0.01, 10_000, allow_nan=False), min_size=1, max_size=300)
fractions = st.floats(0.001, 1.0)


@given(latencies, fractions)
def test_percentile_is_a_measured_value_with_that_share_at_or_below_it(values: list[float], q: float) -> None:
    p = percentile(values, q)
    assert p in values
    assert sum(v <= p for v in values) >= q * len(values)
    assert sum(v < p for v in values) < q * len(values)


def test_percentile_refuses_no_values_and_fractions_outside_the_unit_interval() -> None:
    with pytest.raises(ValueError):
        percentile([], 0.5)
    with pytest.raises(ValueError):
        percentile([1.0], 0)


def run(requests: int, seconds: float, latencies: list[float], errors: int = 0) -> LoadRun:
    return LoadRun(requests=requests, concurrency=32, seconds=seconds, latencies_ms=latencies, errors=errors)


def test_runs_of_a_side_add_up_to_one_throughput_over_the_total_time() -> None:
    measured = combine(
        [run(100, 2.0, [1.0] * 100), run(300, 2.0, [3.0] * 300, errors=2)], server_cpu_seconds=0.8
    )
    assert measured.throughput == pytest.approx(100.0)
    assert measured.p50_ms == 3.0 and measured.p99_ms == 3.0
    assert measured.errors == 2
    assert measured.server_cpu_ms == pytest.approx(2.0)


def test_requests_split_over_rounds_keep_their_total_and_alternate_the_order() -> None:
    assert split(20_001, 2) == [10_001, 10_000]
    assert [name for _, name in interleaved(["tsunagu", "reference"], 3)] == [
        "tsunagu", "reference", "reference", "tsunagu", "tsunagu", "reference",
    ]  # fmt: skip
    with pytest.raises(ValueError):
        split(1, 2)


@pytest.mark.parametrize(
    ("goal", "value", "holds", "margin"),
    [
        (at_least(0.5), 0.62, True, ""),
        (at_least(0.5), 0.4, False, "short by 0.10 (20%)"),
        (below(5.0), 4.9, True, ""),
        (below(5.0), 5.0, False, "over by 0 (0%)"),
        (below(50.0), 60.0, False, "over by 10.0 (20%)"),
        (at_least(0.9), math.nan, False, "no figure"),
    ],
)
def test_a_goal_says_whether_it_holds_and_by_how_much_it_was_missed(goal, value, holds, margin) -> None:  # type: ignore[no-untyped-def]
    assert goal.holds(value) is holds
    assert goal.margin(value) == margin


def measured(throughput: float, errors: int = 0) -> Measured:
    return Measured(
        requests=1000, concurrency=32, seconds=1000 / throughput, throughput=throughput,
        p50_ms=20.0, p99_ms=80.0, errors=errors,
    )  # fmt: skip


def test_a_row_passes_only_when_every_goal_holds_and_no_request_failed() -> None:
    figures = [
        Figure(name="ratio", value=0.6, goal=at_least(0.5)),
        Figure(name="p50", value=20.0, goal=below(50)),
    ]
    assert Row(scenario="w", title="w", platform=measured(300), figures=figures).status == "pass"
    missed = [*figures, Figure(name="p99", value=80.0, goal=below(50))]
    assert Row(scenario="w", title="w", figures=missed).status == "miss"
    assert Row(scenario="w", title="w", platform=measured(300, errors=1), figures=figures).status == "invalid"
    assert Row(scenario="w", title="w", error="boom").status == "error"
    assert Row(scenario="w", title="w", figures=[Figure(name="apply", value=7.5)]).status == "-"


def test_results_json_has_the_machine_and_per_scenario_figures_goal_and_verdict(tmp_path: Path) -> None:
    row = Row(
        scenario="notices_write",
        title="notices write",
        backend="postgres",
        platform=measured(300),
        reference=measured(1000),
        figures=[Figure(name="ratio", value=0.3, goal=at_least(0.5))],
    )
    path = tmp_path / "results.json"
    write_results(path, {"cpu": "x", "cores": 2}, {"quick": True}, [row])
    document = json.loads(path.read_text())
    assert document["machine"] == {"cpu": "x", "cores": 2}
    [result] = document["results"]
    assert result["platform"]["throughput"] == 300 and result["reference"]["p99_ms"] == 80.0
    assert result["platform"]["requests"] == 1000 and result["platform"]["concurrency"] == 32
    assert result["figures"] == [
        {
            "name": "ratio",
            "value": 0.3,
            "unit": "",
            "goal": "≥ 0.5",
            "passed": False,
            "margin": "short by 0.20 (40%)",
        }
    ]
    assert result["status"] == "miss"
    table = render_table([row], markdown=True).splitlines()
    assert table[0].startswith("| scenario | backend |") and "miss (short by 0.20 (40%))" in table[2]
