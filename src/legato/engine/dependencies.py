"""Which task runs a task call depends on: the edges of a run's graph.

A data edge comes from a future passed as an argument (directly or inside a
list, tuple, set or dict), or from a direct call's result passed on as it is
(tracked by identity in ``sources``); a ``wait_for`` edge from ``wait_for=``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from legato.futures import LegatoFuture, LegatoFutureList
from legato.records import Dependency

PLAIN_TYPES = (int, float, str, bool, bytes, type(None))
COLLECTION_TYPES = (list, tuple, set, frozenset, LegatoFutureList)


def collect_dependencies(
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    wait_for: Sequence[Any] | None,
    names: Sequence[str],
    sources: Mapping[int, tuple[Any, str]],
) -> tuple[tuple[Dependency, ...], bool]:
    """The call's dependencies, and whether any argument holds a future."""
    if not wait_for and not sources:
        # Fast path: plain values cannot carry a dependency.
        for value in args:
            if type(value) not in PLAIN_TYPES:
                break
        else:
            for value in kwargs.values():
                if type(value) not in PLAIN_TYPES:
                    break
            else:
                return (), False
    deps: list[Dependency] = []
    has_futures = False

    def from_source(value: Any, param: str | None, kind: str) -> None:
        hit = sources.get(id(value))
        if hit is not None and hit[0] is value:
            deps.append(Dependency(hit[1], kind, param))

    def scan(value: Any, param: str) -> None:
        nonlocal has_futures
        kind = type(value)
        if kind in PLAIN_TYPES:
            return
        if isinstance(value, LegatoFuture):
            has_futures = True
            deps.append(Dependency(value.task_run_id, "data", param))
        elif kind in COLLECTION_TYPES or kind is dict:
            items = value.values() if kind is dict else value
            for item in items:
                if isinstance(item, LegatoFuture):
                    has_futures = True
                    deps.append(Dependency(item.task_run_id, "data", param))
                elif sources:
                    from_source(item, param, "data")
        if sources:
            from_source(value, param, "data")

    for i, value in enumerate(args):
        scan(value, names[i] if i < len(names) else f"args[{i}]")
    for name, value in kwargs.items():
        scan(value, name)
    if wait_for:
        for item in wait_for:
            if isinstance(item, LegatoFuture):
                deps.append(Dependency(item.task_run_id, "wait_for"))
            elif sources:
                from_source(item, None, "wait_for")
    return tuple(deps), has_futures
