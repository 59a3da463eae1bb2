"""The plain call's short path (`TaskCall._run_plain`) records what the general one does."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from legato import flow, task
from legato.engine import task_engine
from legato.errors import ResultNotSerializableError
from legato.records import TaskRun
from legato.states import StateType
from legato.store.base import Store


def _noop_hook(*_: Any) -> None:
    """An on_completion hook: sends the call down the general path, records nothing."""


def make_list(n: int) -> list[int]:
    return list(range(n))


def total(values: list[int], extra: int = 0) -> int:
    return sum(values) + extra


plain_make = task(make_list, name="make")
plain_total = task(total, name="total")
general_make = task(make_list, name="make", on_completion=[_noop_hook])
general_total = task(total, name="total", on_completion=[_noop_hook])


@pytest.fixture
def short_paths(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The call keys that took the short path."""
    taken: list[str] = []
    real = task_engine.TaskCall._run_plain

    def spy(self: task_engine.TaskCall, *args: Any) -> Any:
        taken.append(self.call_key)
        return real(self, *args)

    monkeypatch.setattr(task_engine.TaskCall, "_run_plain", spy)
    return taken


def comparable(record: TaskRun) -> dict[str, Any]:
    """A record's fields, minus those that differ between two calls of one task."""
    fields = dataclasses.asdict(record)
    for name in ("id", "call_key", "name", "start_time", "end_time"):
        fields.pop(name)
    deps = fields.pop("dependencies")
    fields["dependency_kinds"] = [(d["kind"], d["parameter"]) for d in deps]
    return fields


def test_a_plain_call_records_what_the_general_path_records(
    default_store: Store, short_paths: list[str]
) -> None:
    @flow
    def both() -> tuple[int, int]:
        plain = plain_total(plain_make(3), extra=1)
        general = general_total(general_make(3), extra=1)
        return plain, general

    state = both(return_state=True)
    assert state.is_completed() and state.result() == (4, 4)
    assert short_paths == ["make[0]", "total[0]"]
    runs = {r.call_key: r for r in default_store.list_task_runs(state.run_id)}
    for plain_key, general_key in (("make[0]", "make[1]"), ("total[0]", "total[1]")):
        plain, general = runs[plain_key], runs[general_key]
        assert comparable(plain) == comparable(general)
        assert plain.name == plain_key and plain.state is StateType.COMPLETED
        assert plain.start_time is not None and plain.end_time is not None
        assert plain.start_time <= plain.end_time
    # The list made by one plain call is an input of the next: a data edge.
    assert [d.upstream_id for d in runs["total[0]"].dependencies] == [runs["make[0]"].id]
    assert default_store.get_task_result(runs["total[0]"].id) is not None


def test_a_plain_call_that_fails_once_retries_on_the_general_path(
    default_store: Store, short_paths: list[str]
) -> None:
    failures = [RuntimeError("first attempt fails")]

    @task(retries=1)
    def flaky(x: int) -> int:
        if failures:
            raise failures.pop()
        return x + 1

    @flow
    def once() -> int:
        return flaky(1)

    state = once(return_state=True)
    assert state.is_completed() and state.result() == 2
    assert short_paths == ["flaky[0]"]
    (run,) = default_store.list_task_runs(state.run_id)
    assert run.state is StateType.COMPLETED and run.attempts == 2
    assert [a.state for a in run.attempt_log] == ["failed", "completed"]


def test_a_plain_call_whose_result_pickle_cannot_encode_fails_naming_it(
    default_store: Store, short_paths: list[str]
) -> None:
    @task
    def unpicklable() -> Any:
        return lambda: None

    @flow
    def bad() -> None:
        unpicklable()

    state = bad(return_state=True)
    assert state.is_failed()
    with pytest.raises(ResultNotSerializableError, match="unpicklable"):
        state.result()
    assert short_paths == ["unpicklable[0]"]
    (run,) = default_store.list_task_runs(state.run_id)
    assert run.state is StateType.FAILED and run.error is not None
