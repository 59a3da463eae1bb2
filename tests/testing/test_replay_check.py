"""The replay check (`legato.testing.replay`) and run export: a recorded run replayed
against current code, without running tasks, reports where the code diverges."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from legato import flow, task
from legato.client.export import EXPORT_VERSION, export_run, parse_export
from legato.errors import RunExportError, RunNotFoundError
from legato.store import get_default_store, reset_default_store
from legato.testing import replay

EFFECTS: list[str] = []


@task
def fetch(n: int) -> int:
    EFFECTS.append(f"fetch {n}")
    return n * 10


@task(call_key="pay")
def charge(amount: int) -> str:
    EFFECTS.append(f"charge {amount}")
    return f"charged {amount}"


@task(call_key="pay")
def bill(amount: int) -> str:
    return f"charged {amount}"


@task
def refund(amount: int) -> str:
    return f"refunded {amount}"


@task
def explode(n: int) -> int:
    raise ValueError(f"no stock for {n}")


@flow(name="orders")
def orders(n: int) -> str:
    total = fetch(n) + fetch.submit(n + 1).result()
    return charge(total)


@flow(name="orders")
def orders_renamed_task(n: int) -> str:
    return bill(fetch(n) + fetch(n + 1))  # another task at the call key "pay"


@flow(name="orders")
def orders_added_call(n: int) -> str:
    total = fetch(n) + fetch(n + 1)
    paid = charge(total)
    refund(total)
    return paid


@flow(name="orders")
def orders_removed_call(n: int) -> str:
    return charge(fetch(n) + 10 * (n + 1))


@flow(name="orders")
def orders_changed_args(n: int) -> str:
    return charge(fetch(n) + fetch(n + 2))


@flow(name="orders")
def orders_changed_result(n: int) -> str:
    return charge(fetch(n) + fetch(n + 1)) + "!"


@flow(name="shaky")
def shaky(n: int) -> int:
    return explode(fetch(n))


def record_orders() -> str:
    state = orders(3, return_state=True)
    assert state.is_completed()
    EFFECTS.clear()
    return str(state.run_id)


def kinds(report: object) -> list[tuple[str, str | None]]:
    return [(d.kind, d.call_key) for d in report.divergences]  # type: ignore[attr-defined]


@pytest.mark.usefixtures("backend")
def test_a_recorded_run_replays_clean_without_running_tasks() -> None:
    run_id = record_orders()
    report = replay(run_id, orders)
    assert report.ok, report.lines()
    assert report.calls == 3
    assert EFFECTS == []  # answered from the recording, no task body ran
    assert "matches the recording" in report.lines()[0]


@pytest.mark.usefixtures("backend")
def test_export_to_a_file_replays_without_the_original_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = record_orders()
    data = export_run(get_default_store(), run_id, include_logs=True)
    assert data["version"] == EXPORT_VERSION and data["run"]["id"] == run_id
    assert [t["call_key"] for t in data["tasks"]] == ["fetch[0]", "fetch[1]", "pay"]
    assert data["tasks"][0]["args_fingerprint"] == "(3,)"
    assert data["tasks"][2]["result"]["payload"]
    path = tmp_path / "run.json"
    path.write_text(json.dumps(data))
    # Any use of the default store from here on fails.
    monkeypatch.setenv("LEGATO_DATABASE_URL", "nowhere://store")
    reset_default_store()
    assert replay(path, orders).ok
    report = replay(str(path), orders_changed_args)
    # fetch[1] answers with its recorded value, so what follows matches again.
    assert kinds(report) == [("arguments", "fetch[1]")]


def test_another_task_at_a_key_is_reported() -> None:
    report = replay(record_orders(), orders_renamed_task)
    assert kinds(report) == [("task-name", "pay")]
    assert "'charge'" in report.divergences[0].message
    assert "'bill'" in report.divergences[0].message


def test_an_added_call_is_reported_and_stops_the_replay() -> None:
    report = replay(record_orders(), orders_added_call)
    assert kinds(report) == [("new-call", "refund[0]")]
    assert report.stopped is not None
    assert EFFECTS == []


def test_a_removed_call_is_reported() -> None:
    report = replay(record_orders(), orders_removed_call)
    assert ("missing-call", "fetch[1]") in kinds(report)
    assert not report.ok


def test_changed_arguments_and_result_are_reported() -> None:
    run_id = record_orders()
    report = replay(run_id, orders_changed_args)
    # fetch[1] answers with its recorded value, so what follows matches again.
    assert kinds(report) == [("arguments", "fetch[1]")]
    assert "(4,)" in report.divergences[0].message and "(5,)" in report.divergences[0].message
    report = replay(run_id, orders_changed_result)
    assert kinds(report) == [("result", None)]
    assert "charged 70!" in report.divergences[0].message


def test_a_failed_run_replays_its_recorded_failure() -> None:
    state = shaky(2, return_state=True)
    assert state.type.value == "failed"
    report = replay(str(state.run_id), shaky)
    assert report.ok, report.lines()
    assert report.final_state is not None and report.final_state.value == "failed"
    assert replay(str(state.run_id), orders).divergences  # other code diverges


@flow(name="shaky-retrying", retries=2)
def shaky_retrying(n: int) -> int:
    return explode(fetch(n))


def test_a_flow_with_retries_replays_once() -> None:
    state = shaky_retrying(2, return_state=True)
    assert state.type.value == "failed"
    report = replay(str(state.run_id), shaky_retrying)
    assert report.ok, report.lines()
    assert report.calls == 2  # fetch and explode, in one attempt


@flow(name="parent-orders")
def parent_orders(n: int) -> str:
    return orders(n)


def test_a_subflow_call_stops_the_replay_and_says_so() -> None:
    state = parent_orders(1, return_state=True)
    assert state.is_completed()
    EFFECTS.clear()
    report = replay(str(state.run_id), parent_orders)
    assert kinds(report) == [("subflow", "fetch[0]")]
    assert "top-level" in report.divergences[0].message
    assert EFFECTS == []


def test_bad_input_gives_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(RunExportError, match="not JSON"):
        parse_export("{not json")
    with pytest.raises(RunExportError, match="not a legato run export"):
        parse_export('{"some": "thing"}')
    with pytest.raises(RunExportError, match="version 99"):
        parse_export(json.dumps({"format": "legato-run-export", "version": 99}))
    damaged = tmp_path / "damaged.json"
    damaged.write_text(json.dumps({"format": "legato-run-export", "version": 1, "run": {}}))
    with pytest.raises(RunExportError, match="damaged"):
        replay(damaged, orders)
    with pytest.raises(RunNotFoundError):
        replay("0123456789abcdef", orders)
