"""The Prefect 3 programs in examples/prefect/ run unchanged through the shim.

Each file is written as Prefect's documentation teaches (``from prefect import
...``) and is run as a user runs it, ``python -m legato.prefect FILE``, in its
own process with this test's LEGATO_HOME and a temporary working folder. The
test checks the exit status, the lines the program prints, and for most of
them what the store recorded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from _waiting import wait_until
from legato import StateType
from legato.engine.liveness import reconcile
from legato.records import FlowRun, TaskRun
from legato.store.base import Store

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "prefect"


def run_example(name: str, cwd: Path) -> list[str]:
    """Run examples/prefect/NAME unchanged; its printed lines (logs go to stderr)."""
    done = subprocess.run(
        [sys.executable, "-m", "legato.prefect", str(EXAMPLES / name)],
        cwd=cwd,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def only_run(store: Store, flow_name: str) -> FlowRun:
    (run,) = [r for r in store.list_flow_runs(limit=50) if r.flow_name == flow_name]
    return run


def tasks_by_name(store: Store, run: FlowRun) -> dict[str, list[TaskRun]]:
    found: dict[str, list[TaskRun]] = {}
    for task_run in store.list_task_runs(run.id):
        found.setdefault(task_run.task_name, []).append(task_run)
    return found


# -- store checks, one per example that has one --------------------------------------


def hello_recorded(store: Store) -> None:
    run = only_run(store, "hello")
    assert run.state is StateType.COMPLETED and run.parameters == {"count": 5}
    names = sorted(tr.task_name for tr in store.list_task_runs(run.id))
    assert names == ["add_up", "fetch_numbers"]
    assert any("the sum of 1..5 is 15" in log.message for log in store.read_logs(run.id))


def retries_recorded(store: Store) -> None:
    tasks = tasks_by_name(store, only_run(store, "sync_files"))
    (flaky,) = tasks["flaky_download"]
    (picky,) = tasks["picky_upload"]
    assert flaky.state is StateType.COMPLETED and flaky.attempts == 3
    assert picky.state is StateType.FAILED and picky.attempts == 1


def flow_retries_recorded(store: Store) -> None:
    run = only_run(store, "nightly_sync")
    assert run.state is StateType.COMPLETED and run.attempts == 2
    tasks = tasks_by_name(store, run)
    assert [tr.attempts for tr in tasks["fetch"]] == [2]
    assert [tr.attempts for tr in tasks["fetch-patiently"]] == [1]


def concurrency_recorded(store: Store) -> None:
    tasks = tasks_by_name(store, only_run(store, "thumbnails"))
    assert len(tasks["resize"]) == 3 and len(tasks["checksum"]) == 3


def states_recorded(store: Store) -> None:
    runs = store.list_flow_runs(limit=10)
    assert sorted(r.state.value for r in runs) == ["completed", "failed"]
    (failed,) = [r for r in runs if r.state is StateType.FAILED]
    assert failed.state_message == "1 of 2 records are invalid"


def hooks_recorded(store: Store) -> None:
    runs = store.list_flow_runs(limit=10)
    assert sorted(r.state.value for r in runs) == ["completed", "failed"]


def tags_recorded(store: Store) -> None:
    run = only_run(store, "warehouse")
    assert run.tags == ("manual",)
    tags = sorted(sorted(tr.tags) for tr in store.list_task_runs(run.id))
    assert tags == [["finance", "io", "manual", "nightly"], ["io", "manual"]]


def artifacts_recorded(store: Store) -> None:
    run = only_run(store, "report")
    artifacts = store.list_artifacts(flow_run_id=run.id)
    assert [a.type for a in artifacts] == ["progress", "table", "markdown", "link"]
    progress, table, markdown, link = artifacts
    assert json.loads(progress.data) == 100
    assert len(json.loads(table.data)) == 5 and table.key == "scores"
    assert "Best item: **5**" in json.loads(markdown.data)
    assert json.loads(link.data)["link"] == "https://example.com/raw.csv"


def variables_recorded(store: Store) -> None:
    batch = store.get_variable("batch_size")
    assert batch is not None and json.loads(batch.value) == 500
    assert store.get_variable("regions") is None


def transactions_recorded(store: Store) -> None:
    runs = store.list_flow_runs(limit=10)
    (bad,) = [r for r in runs if r.state is StateType.FAILED]
    rolled_back = {tr.task_name: tr.rolled_back for tr in store.list_task_runs(bad.id)}
    assert rolled_back == {"write_report": True, "check_report": False}


def subflows_recorded(store: Store) -> None:
    runs = store.list_flow_runs(limit=10)
    parent = only_run(store, "pipeline")
    children = sorted(r.flow_name for r in runs if r.parent_run_id == parent.id)
    assert children == ["ingest", "ingest", "summarize"]
    assert all(r.state is StateType.COMPLETED for r in runs)


def logging_recorded(store: Store) -> None:
    run = only_run(store, "tidy")
    logs = store.read_logs(run.id)
    messages = [(log.level, log.message) for log in logs]
    assert (20, "tidying 4 rows") in messages
    assert (30, "dropped 2 empty rows") in messages
    (clean,) = store.list_task_runs(run.id)
    printed = [log for log in logs if log.message == "kept 2 of 4 rows"]
    assert [log.task_run_id for log in printed] == [clean.id]


def run_names_recorded(store: Store) -> None:
    names = sorted(r.name for r in store.list_flow_runs(limit=10))
    assert names == ["daily-report-2024-05-01", "team_digest-for-data"]
    run = only_run(store, "daily_report")
    task_names = sorted(tr.name for tr in store.list_task_runs(run.id))
    assert task_names == ["fetch-sales-2024-05-01", "sync-emea"]


def timeouts_recorded(store: Store) -> None:
    (slow,) = tasks_by_name(store, only_run(store, "dashboard"))["slow_query"]
    assert slow.state is StateType.FAILED
    assert slow.error is not None and slow.error.type == "TaskTimeoutError"
    assert only_run(store, "stuck").state is StateType.FAILED


def pause_times_out(store: Store) -> None:
    run = only_run(store, "review")
    assert run.state is StateType.PAUSED
    # Nobody resumes it: once its timeout has passed, reading it shows it failed.
    wait_until(
        lambda: reconcile(store, only_run(store, "review")).state is StateType.FAILED,
        timeout=20,
        interval=0.1,
        what="the paused run failed at its pause timeout",
    )
    assert "pause timeout" in (only_run(store, "review").state_message or "")


Check = Callable[[Store], None]

CASES: list[tuple[str, list[str], Check | None]] = [
    ("hello_flow.py", ["total=15"], hello_recorded),
    (
        "retries.py",
        [
            "download='contents of https://example.com/data.csv' upload_failed=True"
            " flaky_attempts=3 picky_attempts=1"
        ],
        retries_recorded,
    ),
    (
        "flow_retries.py",
        ["['/users: ok', '/orders: ok'] flow_attempts=2"],
        flow_retries_recorded,
    ),
    (
        "caching_policies.py",
        [
            "result=[[4, 4, 9], ['hello ada', 'hello ada', 'hello bob'], [42, 42]]"
            " executions: square=2 greet=2 constant=1"
        ],
        None,
    ),
    (
        "caching_expiration.py",
        [
            "outcome={'quotes': ['ACME@1', 'ACME@1', 'ACME@2'], 'rates': [1, 2]}"
            " executions={'quote': 2, 'rate': 2}"
        ],
        None,
    ),
    (
        "cache_key_fn.py",
        [
            "names=['PARIS', 'PARIS', 'region of eu-west', 'region of eu-west']"
            " calls=['paris', 'eu-west']"
        ],
        None,
    ),
    (
        "concurrency.py",
        [
            "{'thumbnails': ['a.png@128px', 'b.png@128px', 'c.png@128px'], 'all_done': True,"
            " 'checksums': [468, 469, 470]}"
        ],
        concurrency_recorded,
    ),
    ("dependencies.py", ["rows=25 order=['create events', 'load events', 'vacuum']"], None),
    (
        "states.py",
        [
            "explode failed=True type=failed",
            "explode failed=True type=failed",
            "good=True result=[1, 2]",
            "bad=True message='1 of 2 records are invalid'",
        ],
        states_recorded,
    ),
    (
        "hooks.py",
        [
            "failed=True",
            "task load completed",
            "flow nightly completed",
            "task load failed",
            "flow nightly failed: a negative row count",
        ],
        hooks_recorded,
    ),
    (
        "tags_example.py",
        ["plain=['io', 'manual'] tagged=['finance', 'io', 'manual', 'nightly']"],
        tags_recorded,
    ),
    ("artifacts.py", ["rows=5 best=5"], artifacts_recorded),
    (
        "variables.py",
        ["{'batch': 500, 'regions': ['eu', 'us'], 'missing': 'fallback'}", "after unset: None"],
        variables_recorded,
    ),
    (
        "transactions.py",
        [
            "good completed=True file kept=True",
            "rolled back: report removed",
            "bad failed=True file kept=False",
        ],
        transactions_recorded,
    ),
    ("async_flow.py", ["items=12 first=[0, 1, 2] last=32"], None),
    ("subflows.py", ["total=27"], subflows_recorded),
    ("logging_example.py", ["kept=2"], logging_recorded),
    (
        "run_names.py",
        ["daily-report-2024-05-01 fetch-sales-2024-05-01 sync-emea team_digest-for-data"],
        run_names_recorded,
    ),
    ("timeouts.py", ["{'slow_failed': True, 'quick': 'rows'}", "stuck failed=True"], None),
    ("pause_timeout.py", ["state=paused"], pause_times_out),
]


def test_every_example_is_covered() -> None:
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(
        [name for name, _, _ in CASES] + ["runtime_info.py", "run_context.py"]
    )


@pytest.mark.parametrize(("name", "expected", "check"), CASES, ids=[c[0] for c in CASES])
def test_example_runs_unchanged(
    name: str, expected: list[str], check: Check | None, tmp_path: Path, default_store: Store
) -> None:
    assert run_example(name, tmp_path) == expected
    if check is not None:
        check(default_store)


def test_runtime_attributes(tmp_path: Path, default_store: Store) -> None:
    first, outside = run_example("runtime_info.py", tmp_path)
    info = json.loads(first)
    run = only_run(default_store, "introspect")
    assert info == {
        "flow_in_task": "introspect",
        "flow_name": "introspect",
        "flow_parameters": {"x": 3},
        "run_id": run.id,
        "run_name": run.name,
        "task_name": "describe_task",
        "task_parameters": {"x": 3},
        "task_run_count": 1,
    }
    assert outside == "outside a run: id=None"


def test_run_context(tmp_path: Path, default_store: Store) -> None:
    (line,) = run_example("run_context.py", tmp_path)
    run = only_run(default_store, "locate")
    assert line == str({"flow": "locate", "run_name": run.name, "task": "where_am_i[0]"})


def test_cached_results_outlive_the_process(tmp_path: Path, default_store: Store) -> None:
    """A second run of the caching example finds every key the first one stored."""
    run_example("caching_policies.py", tmp_path)
    (line,) = run_example("caching_policies.py", tmp_path)
    assert line.endswith("executions: square=0 greet=0 constant=0")
    assert len(default_store.list_flow_runs(limit=10)) == 2
