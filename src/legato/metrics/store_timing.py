"""Timings of store operations, measured in this process (``legato_store_op_seconds``).

`instrument_store` wraps the public methods of one store object (instance
attributes shadowing the class's), so a process without metrics pays nothing.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from typing import Any

from legato.store.base import Store

#: Upper bounds (seconds) of the store operation histogram's buckets.
STORE_OP_BOUNDS: tuple[float, ...] = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5
)  # fmt: skip


class StoreOpTimings:
    """Per-operation histograms (bucket counts, sum) of one store's calls."""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self._lock = threading.Lock()
        self._ops: dict[str, tuple[list[int], list[float]]] = {}

    def observe(self, op: str, seconds: float) -> None:
        with self._lock:
            found = self._ops.get(op)
            if found is None:
                found = self._ops[op] = ([0] * (len(STORE_OP_BOUNDS) + 1), [0.0])
            counts, total = found
            index = len(STORE_OP_BOUNDS)
            for i, bound in enumerate(STORE_OP_BOUNDS):
                if seconds <= bound:
                    index = i
                    break
            counts[index] += 1
            total[0] += seconds

    def snapshot(self) -> dict[str, tuple[list[int], float]]:
        """Per operation: the (non-cumulative) bucket counts, +Inf last, and the sum."""
        with self._lock:
            return {op: (list(counts), total[0]) for op, (counts, total) in self._ops.items()}


def _timed(method: Callable[..., Any], op: str, timings: StoreOpTimings) -> Callable[..., Any]:
    clock = time.perf_counter

    @functools.wraps(method)
    def timed(*args: Any, **kwargs: Any) -> Any:
        started = clock()
        try:
            return method(*args, **kwargs)
        finally:
            timings.observe(op, clock() - started)

    return timed


def instrument_store(store: Store) -> StoreOpTimings:
    """Time every public operation of ``store`` from now on; the same timings when
    called again on the same store."""
    existing = store.__dict__.get("_legato_op_timings")
    if isinstance(existing, StoreOpTimings):
        return existing
    timings = StoreOpTimings(store.backend)
    for name in dir(type(store)):
        if name.startswith("_") or name in ("clock", "backend"):
            continue
        method = getattr(store, name, None)
        if callable(method) and getattr(type(store), name, None) is not None:
            attribute = getattr(type(store), name)
            if isinstance(attribute, (property, staticmethod, classmethod, type)):
                continue
            setattr(store, name, _timed(method, name, timings))
    store.__dict__["_legato_op_timings"] = timings
    return timings
