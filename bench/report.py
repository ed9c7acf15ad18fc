"""Results: figures with their goals, the printed table, and ``bench/results.json``."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import msgspec

from bench.stats import Measured


class Goal(msgspec.Struct, kw_only=True, frozen=True):
    """What a figure must be: ``at_least`` or ``below`` a threshold."""

    kind: Literal["at_least", "below"]
    threshold: float

    def holds(self, value: float) -> bool:
        if math.isnan(value):
            return False
        return value >= self.threshold if self.kind == "at_least" else value < self.threshold

    def describe(self, unit: str = "") -> str:
        sign = "≥" if self.kind == "at_least" else "<"
        return f"{sign} {self.threshold:g}{unit}"

    def margin(self, value: float, unit: str = "") -> str:
        """How far a missed goal was missed, absolute and relative to the threshold; ``""`` when it holds."""
        if self.holds(value):
            return ""
        if math.isnan(value):
            return "no figure"
        gap = self.threshold - value if self.kind == "at_least" else value - self.threshold
        word = "short by" if self.kind == "at_least" else "over by"
        relative = f" ({gap / self.threshold:.0%})" if self.threshold else ""
        return f"{word} {_number(gap)}{unit}{relative}"


def at_least(threshold: float) -> Goal:
    return Goal(kind="at_least", threshold=threshold)


def below(threshold: float) -> Goal:
    return Goal(kind="below", threshold=threshold)


class Figure(msgspec.Struct, kw_only=True, frozen=True):
    """One number a row reports, with its goal if it has one."""

    name: str
    value: float
    unit: str = ""
    goal: Goal | None = None

    @property
    def passed(self) -> bool | None:
        return None if self.goal is None else self.goal.holds(self.value)

    def describe(self) -> str:
        return f"{self.name} {_number(self.value)}{self.unit}"


class Row(msgspec.Struct, kw_only=True):
    """One line of the table: a scenario on one backend (or an in-process figure, with no backend)."""

    scenario: str
    title: str
    backend: str = "-"
    platform: Measured | None = None
    reference: Measured | None = None
    figures: list[Figure] = msgspec.field(default_factory=list)
    notes: list[str] = msgspec.field(default_factory=list)
    error: str = ""
    """Why the row has no figures: the run failed."""

    @property
    def status(self) -> str:
        """``pass``, ``miss``, ``error`` (the run failed), ``invalid`` (requests failed, so the figures mean
        nothing) or ``-`` (no goal)."""
        if self.error:
            return "error"
        if any(side is not None and side.errors for side in (self.platform, self.reference)):
            return "invalid"
        verdicts = [f.passed for f in self.figures if f.passed is not None]
        if not verdicts:
            return "-"
        return "pass" if all(verdicts) else "miss"

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "scenario": self.scenario,
            "title": self.title,
            "backend": self.backend,
            "status": self.status,
        }
        for side in ("platform", "reference"):
            measured = getattr(self, side)
            if measured is not None:
                data[side] = msgspec.to_builtins(measured)
        data["figures"] = [
            {
                "name": f.name,
                "value": f.value,
                "unit": f.unit,
                "goal": None if f.goal is None else f.goal.describe(f.unit),
                "passed": f.passed,
                "margin": "" if f.goal is None else f.goal.margin(f.value, f.unit),
            }
            for f in self.figures
        ]
        data["notes"] = list(self.notes)
        if self.error:
            data["error"] = self.error
        return data


def ratio(platform: Measured, reference: Measured) -> float:
    """Platform throughput / reference throughput (NaN when the reference did nothing)."""
    return platform.throughput / reference.throughput if reference.throughput > 0 else math.nan


def _number(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    if value == 0 or abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _side(measured: Measured | None) -> tuple[str, str]:
    if measured is None:
        return "", ""
    return f"{measured.throughput:.0f}", f"{measured.p50_ms:.1f} / {measured.p99_ms:.1f}"


HEADERS = (
    "scenario",
    "backend",
    "requests x conns",
    "tsunagu req/s",
    "p50 / p99 ms",
    "reference req/s",
    "p50 / p99 ms",
    "figures",
    "goal",
    "result",
)


def table_rows(rows: Sequence[Row]) -> list[tuple[str, ...]]:
    """Cells of the table, one tuple per row (the figures with goals first)."""
    out = []
    for row in rows:
        measured = row.platform or row.reference
        load = f"{measured.requests} x {measured.concurrency}" if measured else ""
        figures = sorted(row.figures, key=lambda f: f.goal is None)
        goals = "; ".join(f"{f.name} {f.goal.describe(f.unit)}" for f in figures if f.goal is not None)
        misses = "; ".join(f.goal.margin(f.value, f.unit) for f in figures if f.goal and not f.passed)
        result = row.status + (f" ({misses})" if misses and row.status == "miss" else "")
        out.append(
            (
                row.title,
                row.backend,
                load,
                *_side(row.platform),
                *_side(row.reference),
                "; ".join(f.describe() for f in figures),
                goals,
                result,
            )
        )
    return out


def render_table(rows: Sequence[Row], markdown: bool = False) -> str:
    """The table as aligned text, or as a Markdown table (for docs/performance.md)."""
    cells = [HEADERS, *table_rows(rows)]
    if markdown:
        lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in cells[1:]]
        return "\n".join(lines)
    widths = [max(len(row[i]) for row in cells) for i in range(len(HEADERS))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    )


def write_results(path: Path, machine: dict[str, Any], options: dict[str, Any], rows: Sequence[Row]) -> None:
    """``results.json``: the machine, the options of the run, and every row."""
    document = {"machine": machine, "options": options, "results": [row.to_json() for row in rows]}
    path.write_bytes(msgspec.json.format(msgspec.json.encode(document), indent=2) + b"\n")
