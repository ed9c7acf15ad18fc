"""Benchmarks: fixed amounts of work that print their figures (``bench/run``; see docs/performance.md)."""
