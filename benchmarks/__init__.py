"""Benchmarks: measured ratios, never wall-clock assertions. Run with ``make bench`` (``make bench-smoke`` in CI)."""
