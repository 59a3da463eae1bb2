"""Argument fingerprints: a replayed call must be the call that was recorded."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path

import pytest
from _engine_support import Journal, record

import legato
from legato import flow, task
from legato.engine import task_engine
from legato.engine.calls import resume_run
from legato.engine.fingerprint import MAX_CHARS, fingerprint
from legato.errors import ConfigurationError, NonDeterministicFlowError
from legato.store.base import Store


def broken() -> Path:
    return Path(os.environ["LEGATO_TEST_JOURNAL"]).with_name("broken")


def shifted() -> Path:
    return Path(os.environ["LEGATO_TEST_JOURNAL"]).with_name("shifted")


@task
def double(x: int) -> int:
    record(f"double {x}")
    return 2 * x


@flow
def doubles() -> list[int]:
    # On resume the "shifted" marker changes the argument at the same key.
    first = double(5 if shifted().exists() else 1)
    if broken().exists():
        raise RuntimeError("broken on purpose")
    return [first, double(2)]


def failed_run(store: Store) -> str:
    broken().touch()
    assert doubles(return_state=True).is_failed()
    broken().unlink()
    return store.list_flow_runs(flow_name="doubles", limit=1)[0].id


def test_changed_arguments_at_a_key_are_an_error_naming_both(default_store: Store) -> None:
    run_id = failed_run(default_store)
    shifted().touch()
    with pytest.raises(NonDeterministicFlowError) as caught:
        legato.resume_flow_run(run_id)
    error = caught.value
    assert error.call_key == "double[0]"
    assert error.recorded_args == "(1,)" and error.called_args == "(5,)"
    message = str(error)
    assert "'double[0]'" in message and "(1,)" in message and "(5,)" in message
    assert "--on-changed-args" in message


def test_unchanged_arguments_replay(default_store: Store, journal: Journal) -> None:
    run_id = failed_run(default_store)
    assert legato.resume_flow_run(run_id) == [2, 4]
    assert journal.count("double 1") == 1  # replayed, not run again


def test_changed_arguments_can_be_replayed_or_rerun(default_store: Store, journal: Journal) -> None:
    run_id = failed_run(default_store)
    shifted().touch()
    with pytest.raises(ConfigurationError, match="on_changed_args"):
        resume_run(run_id, on_changed_args="maybe")
    state = resume_run(run_id, on_changed_args="replay")
    assert state.result() == [2, 4]  # the recorded result, as asked
    assert journal.count("double 5") == 0


def test_changed_arguments_rerun_runs_the_call_again(
    default_store: Store, journal: Journal
) -> None:
    run_id = failed_run(default_store)
    shifted().touch()
    assert resume_run(run_id, on_changed_args="rerun").result() == [10, 4]
    assert journal.count("double 5") == 1
    recorded = default_store.find_task_run(run_id, "double[0]")
    assert recorded is not None and recorded.args_fingerprint == "(5,)"


def test_fingerprints_can_be_turned_off(
    default_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(task_engine, "FINGERPRINTS", False)
    run_id = failed_run(default_store)
    shifted().touch()
    assert legato.resume_flow_run(run_id) == [2, 4]  # no check: the recorded result
    recorded = default_store.find_task_run(run_id, "double[0]")
    assert recorded is not None and recorded.args_fingerprint is None


class Color(Enum):
    RED = 1


@dataclass
class Point:
    x: int
    y: int


class Opaque:
    """No stable repr: its default repr holds a memory address."""


def test_positional_and_keyword_spellings_agree() -> None:
    names = ("a", "b", "c")
    assert fingerprint(names, (1, 2), {"c": 3}) == fingerprint(names, (1,), {"c": 3, "b": 2})
    assert fingerprint(names, (1,), {}) == fingerprint(names, (), {"a": 1})
    assert fingerprint(names, (1,), {}) != fingerprint(names, (2,), {})


def test_values_with_a_stable_meaning_are_spelled_out() -> None:
    names = ("value",)
    when = datetime(2026, 1, 2, tzinfo=UTC)
    text = fingerprint(names, ([Point(1, 2), Color.RED, {"k": {3, 1}}, when],), {})
    assert "Point(x=1, y=2)" in text and "Color.RED" in text and "{1, 3}" in text
    assert "2026" in text


def test_objects_without_a_stable_repr_count_by_type_only() -> None:
    # Two different instances: a resume in another process sees another address.
    assert fingerprint(("o",), (Opaque(),), {}) == fingerprint(("o",), (Opaque(),), {})


def test_long_arguments_end_in_a_digest() -> None:
    big = "x" * 10_000
    text = fingerprint(("s",), (big,), {})
    assert len(text) <= MAX_CHARS
    assert text != fingerprint(("s",), (big + "y",), {})
    many = list(range(100_000))  # walked only up to a budget, then counted
    assert len(fingerprint(("xs",), (many,), {})) <= MAX_CHARS
