"""The HTTP scenarios: every module here that exports ``SCENARIO`` (see :mod:`bench.scenarios.base`)."""

from __future__ import annotations

import importlib
import pkgutil

from bench.scenarios.base import Scenario

SCALE_SCENARIO = "booking_write"
"""The write path the scale run repeats with 8 and with every municipality in Japan."""
GOALS = frozenset({"ratio", "p50_ms", "p99_ms"})
"""What a scenario's goals may be set on (see :attr:`Scenario.goals`)."""


def discover() -> tuple[list[Scenario], dict[str, str]]:
    """Every scenario in this package, in table order, and the modules that failed to import (name -> why)."""
    found: list[Scenario] = []
    failed: dict[str, str] = {}
    for module in pkgutil.iter_modules(__path__):
        if module.name == "base" or module.name.startswith("_"):
            continue
        name = f"{__name__}.{module.name}"
        try:
            scenario = getattr(importlib.import_module(name), "SCENARIO", None)
        except Exception as exc:  # a scenario being written must not stop the others from running
            failed[name] = f"{type(exc).__name__}: {exc}"
            continue
        if not isinstance(scenario, Scenario):
            continue
        unknown = sorted(set(scenario.goals) - GOALS)
        if unknown:
            failed[name] = (
                f"goals on unknown figures {', '.join(unknown)} (known: {', '.join(sorted(GOALS))})"
            )
            continue
        found.append(scenario)
    return sorted(found, key=lambda s: (s.order, s.name)), failed
