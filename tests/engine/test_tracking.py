"""Data-edge tracking limits, cache keys following code, and duplicate-key messages."""

from __future__ import annotations

from typing import Any

import pytest

from legato import flow, task, task_input_hash
from legato.engine import task_engine
from legato.errors import ConfigurationError
from legato.store.base import Store


@task
def make(i: int) -> list[int]:
    return [i]


@task
def use(value: list[int]) -> int:
    return value[0]


def test_only_recent_results_are_tracked_for_edges(
    default_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(task_engine, "MAX_TRACKED_RESULTS", 3)

    @flow
    def chain() -> int:
        made = [make(i) for i in range(6)]
        return use(made[0]) + use(made[5])  # made[0] is forgotten by now

    assert chain() == 5
    (run,) = default_store.list_flow_runs()
    by_key = {t.call_key: t for t in default_store.list_task_runs(run.id)}
    assert by_key["use[0]"].dependencies == ()
    (edge,) = by_key["use[1]"].dependencies
    assert edge.upstream_id == by_key["make[5]"].id and edge.parameter == "value"


def _compiled_body(source: str) -> Any:
    # Same name, module and qualname each time; only the code differs, as after an edit.
    namespace: dict[str, Any] = {"__name__": "edited_module"}
    exec(compile(source, "<edited>", "exec"), namespace)
    return namespace["body"]


def test_editing_a_task_changes_its_cache_key(default_store: Store) -> None:
    results = []
    for source in ("def body(x):\n    return x + 1\n", "def body(x):\n    return x + 2\n"):
        cached = task(_compiled_body(source), cache_key_fn=task_input_hash)

        @flow
        def run_it(cached: Any = cached) -> int:
            return cached(1)  # type: ignore[no-any-return]

        results.append(run_it())
    # The edited task did not get the first version's cached result.
    assert results == [2, 3]
    runs = default_store.list_flow_runs()
    assert all(not t.cached for r in runs for t in default_store.list_task_runs(r.id))


def test_duplicate_keys_are_named_plainly(default_store: Store) -> None:
    @task
    def charge(amount: int) -> int:
        return amount

    @flow
    def twice_charged() -> None:
        keyed = charge.with_options(call_key="charge-order-1")
        keyed(10)
        keyed(20)

    with pytest.raises(ConfigurationError) as info:
        twice_charged()
    assert "call_key 'charge-order-1' (task 'charge') is used twice" in str(info.value)
