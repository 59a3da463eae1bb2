"""Latency percentiles shared by the benchmarks."""

from __future__ import annotations

import statistics


def percentiles_ms(seconds: list[float]) -> dict[str, float]:
    """p50, p95 (nearest rank) and max of ``seconds``, in milliseconds."""
    values = sorted(seconds)
    p95 = values[min(len(values) - 1, round(0.95 * (len(values) - 1)))]
    return {
        "p50_ms": round(statistics.median(values) * 1000, 1),
        "p95_ms": round(p95 * 1000, 1),
        "max_ms": round(values[-1] * 1000, 1),
    }
