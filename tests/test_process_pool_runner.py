"""ProcessPoolTaskRunner: bodies run in pool processes, the flow's process records.

Real processes throughout: the pool's, and for the crash test a real
``legato run`` killed with SIGKILL and resumed with ``legato resume``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from _remote_runners import check_killed_run_resumes_without_resending, comparable
from legato import StateType, flow, get_run_logger, task
from legato.cache_policies import INPUTS
from legato.errors import TaskArgumentNotPicklableError, TaskCallError, TaskTimeoutError
from legato.store.base import Store
from legato.task_runners import ProcessPoolTaskRunner, ThreadPoolTaskRunner


class Odd(Exception):
    """A user exception that must come back with its type."""


@task
def square(x: int) -> int:
    return x * x


@task(log_prints=True)
def chatty(x: int) -> int:
    log = get_run_logger()
    log.info("first line of %d (pid %d)", x, os.getpid())
    print(f"printed by {x}")
    log.warning("last line of %d", x)
    return x


@task
def refuse(x: int) -> int:
    raise Odd(f"odd input {x}")


@task(retries=2)
def flaky(counter: str) -> int:
    path = Path(counter)
    tries = int(path.read_text()) + 1 if path.exists() else 1
    path.write_text(str(tries))
    if tries < 3:
        raise Odd(f"attempt {tries} fails")
    return os.getpid()


@task(retries=3)
def takes_lock(lock: Any) -> int:
    return 1


@task(timeout_seconds=0.3)
def sleepy(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def runner_flow(runner: ThreadPoolTaskRunner, body: Callable[..., Any]) -> Any:
    return flow(name="pp-flow", task_runner=runner)(body)


def test_map_of_50_is_recorded_as_under_the_thread_runner(default_store: Store) -> None:
    def body() -> list[int]:
        return square.map(range(50)).result()

    records = {}
    for name, runner in (
        ("threads", ThreadPoolTaskRunner(max_workers=4)),
        ("processes", ProcessPoolTaskRunner(max_workers=2)),
    ):
        state = runner_flow(runner, body)(return_state=True)
        assert state.is_completed()
        assert state.result() == [x * x for x in range(50)]
        runs = default_store.list_task_runs(state.run_id)
        assert len(runs) == 50
        records[name] = sorted((comparable(r) for r in runs), key=lambda r: r["call_key"])
        for run in runs:
            assert run.state is StateType.COMPLETED
            assert default_store.get_task_result(run.id) is not None
    assert records["processes"] == records["threads"]


def test_bodies_run_in_other_processes_and_retries_run_on_the_driver(
    default_store: Store, tmp_path: Path
) -> None:
    counter = str(tmp_path / "tries")

    def body() -> int:
        return flaky.submit(counter).result()

    state = runner_flow(ProcessPoolTaskRunner(max_workers=1), body)(return_state=True)
    assert state.is_completed()
    assert state.result() != os.getpid()  # the body ran in a pool process
    assert Path(counter).read_text() == "3"
    (run,) = default_store.list_task_runs(state.run_id)
    assert run.state is StateType.COMPLETED
    assert run.attempts == 3
    assert [(a.attempt, a.state) for a in run.attempt_log] == [
        (1, "failed"),
        (2, "failed"),
        (3, "completed"),
    ]


def test_a_task_exception_comes_back_with_its_type_and_message(default_store: Store) -> None:
    seen: list[BaseException] = []

    def body() -> None:
        try:
            refuse.submit(7).result()
        except Odd as exc:
            seen.append(exc)
            raise

    state = runner_flow(ProcessPoolTaskRunner(max_workers=1), body)(return_state=True)
    assert state.is_failed()
    (exc,) = seen
    assert type(exc) is Odd
    assert str(exc) == "odd input 7"
    (run,) = default_store.list_task_runs(state.run_id)
    assert run.state is StateType.FAILED
    assert run.error is not None
    assert (run.error.type, run.error.message) == ("Odd", "odd input 7")
    assert "ProcessPoolTaskRunner process" in (run.error.traceback or "")
    assert "in refuse" in (run.error.traceback or "")  # the pool process's own frames


def test_an_argument_that_cannot_be_pickled_fails_clearly_without_retries(
    default_store: Store,
) -> None:
    def body() -> int:
        return takes_lock.submit(threading.Lock()).result()

    state = runner_flow(ProcessPoolTaskRunner(max_workers=1), body)(return_state=True)
    assert state.is_failed()
    with pytest.raises(TaskArgumentNotPicklableError) as raised:
        state.result()
    message = str(raised.value)
    assert "'lock'" in message and "lock" in raised.value.value_type
    assert raised.value.parameter == "lock"
    (run,) = default_store.list_task_runs(state.run_id)
    assert run.state is StateType.FAILED
    assert run.attempts == 1  # trying again cannot help


def test_a_function_that_cannot_be_pickled_fails_clearly(default_store: Store) -> None:
    guard = threading.Lock()

    @task(retries=2)
    def guarded(x: int) -> int:  # a closure over a lock: it cannot travel
        with guard:
            return x

    def body() -> int:
        return guarded.submit(1).result()

    state = runner_flow(ProcessPoolTaskRunner(max_workers=1), body)(return_state=True)
    assert state.is_failed()
    with pytest.raises(TaskArgumentNotPicklableError) as raised:
        state.result()
    assert raised.value.parameter == "<the task's function>"
    (run,) = default_store.list_task_runs(state.run_id)
    assert run.attempts == 1


@task(retries=1)
def dies_once(marker: str) -> int:
    if not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(1)  # the pool process dies: the pool is broken
    return os.getpid()


def test_a_pool_process_that_dies_breaks_one_attempt_and_the_retry_gets_a_fresh_pool(
    default_store: Store, tmp_path: Path
) -> None:
    marker = str(tmp_path / "died")

    def body() -> int:
        return dies_once.submit(marker).result()

    state = runner_flow(ProcessPoolTaskRunner(max_workers=1), body)(return_state=True)
    assert state.is_completed(), state
    (run,) = default_store.list_task_runs(state.run_id)
    assert run.attempts == 2
    assert run.attempt_log[0].error is not None
    assert run.attempt_log[0].error.type == "BrokenProcessPool"


def test_log_lines_written_in_the_pool_land_in_the_run_logs_in_order(
    default_store: Store,
) -> None:
    def body() -> list[int]:
        return chatty.map([1, 2, 3]).result()

    state = runner_flow(ProcessPoolTaskRunner(max_workers=2), body)(return_state=True)
    assert state.is_completed()
    runs = {r.call_key: r for r in default_store.list_task_runs(state.run_id)}
    logs = default_store.read_logs(state.run_id)
    for i, x in enumerate([1, 2, 3]):
        run = runs[f"chatty[{i}]"]
        mine = [line.message for line in logs if line.task_run_id == run.id]
        assert len(mine) == 3, mine
        assert mine[0].startswith(f"first line of {x} (pid ")
        assert f"(pid {os.getpid()})" not in mine[0]
        assert mine[1:] == [f"printed by {x}", f"last line of {x}"]


def test_a_timeout_ends_the_attempt_and_the_run_does_not_wait_for_the_body(
    default_store: Store,
) -> None:
    def body() -> float:
        return sleepy.submit(30).result()

    started = time.monotonic()
    state = runner_flow(ProcessPoolTaskRunner(max_workers=1), body)(return_state=True)
    assert time.monotonic() - started < 15
    assert state.is_failed()
    with pytest.raises(TaskTimeoutError):
        state.result()


@task(cache_policy=INPUTS)
def cached_note(path: str) -> int:
    with open(path, "a") as f:
        f.write("ran\n")
    return 42


@task
def calls_another(x: int) -> int:
    return square(x)


@task
async def async_pid(x: int) -> tuple[int, int]:
    return x, os.getpid()


def test_an_async_task_body_runs_in_the_pool(default_store: Store) -> None:
    def body() -> Any:
        return async_pid.map([1, 2]).result()

    state = runner_flow(ProcessPoolTaskRunner(max_workers=1), body)(return_state=True)
    values = state.result()
    assert [x for x, _ in values] == [1, 2]
    assert all(pid != os.getpid() for _, pid in values)


def test_a_cache_hit_is_answered_on_the_driver_without_submitting(
    default_store: Store, tmp_path: Path
) -> None:
    notes = tmp_path / "notes"

    def body() -> int:
        return cached_note.submit(str(notes)).result()

    for _ in range(2):
        state = runner_flow(ProcessPoolTaskRunner(max_workers=1), body)(return_state=True)
        assert state.result() == 42
    assert notes.read_text() == "ran\n"
    (run,) = default_store.list_task_runs(state.run_id)
    assert run.cached


def test_a_task_called_inside_a_pool_body_fails_clearly(default_store: Store) -> None:
    def body() -> int:
        return calls_another.submit(3).result()

    state = runner_flow(ProcessPoolTaskRunner(max_workers=1), body)(return_state=True)
    assert state.is_failed()
    with pytest.raises(TaskCallError, match="not available in a ProcessPoolTaskRunner process"):
        state.result()


def test_a_killed_run_resumes_without_rerunning_completed_keys(
    default_store: Store, legato_home: Path, tmp_path: Path
) -> None:
    check_killed_run_resumes_without_resending(
        default_store,
        legato_home,
        tmp_path,
        "from legato.task_runners import ProcessPoolTaskRunner",
        "ProcessPoolTaskRunner(max_workers=2)",
    )


@task
def big_bytes(n: int) -> bytes:
    return bytes(range(256)) * (n // 256)


@task
def length(data: bytes) -> int:
    return len(data)


def test_each_task_run_records_the_host_and_pid_that_ran_its_body(default_store: Store) -> None:
    import socket

    def body() -> list[int]:
        return square.map(range(4)).result()

    pooled = runner_flow(ProcessPoolTaskRunner(max_workers=2), body)(return_state=True)
    local = runner_flow(ThreadPoolTaskRunner(max_workers=2), body)(return_state=True)
    hosts = {run.host for run in default_store.list_task_runs(pooled.run_id)}
    assert len(hosts) in (1, 2)
    for host in hosts:
        assert host is not None
        name, _, pid = host.partition(" (pid ")
        assert name == socket.gethostname()
        assert int(pid.rstrip(")")) != os.getpid()
    assert {run.host for run in default_store.list_task_runs(local.run_id)} == {None}
    # The API's view of a task run carries it too.
    from legato.client.views import task_run_to_dict

    (first, *_) = default_store.list_task_runs(pooled.run_id)
    assert task_run_to_dict(first)["host"] == first.host
    # And the run page, for the task run opened there.
    from fastapi.testclient import TestClient

    from legato.client import Client
    from legato.server import create_app

    with TestClient(create_app(Client(default_store))) as http:
        page = http.get(f"/runs/{pooled.run_id}?task={first.id}").text
        assert f"<dt>Ran on</dt><dd>{first.host}</dd>" in page
        (local_first, *_) = default_store.list_task_runs(local.run_id)
        page = http.get(f"/runs/{local.run_id}?task={local_first.id}").text
        assert "(the flow&#39;s process)" in page or "(the flow's process)" in page
    # And `legato show`.
    shown = subprocess.run(
        [sys.executable, "-m", "legato", "show", pooled.run_id],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        check=True,
    ).stdout
    assert f"on {first.host}" in shown


def test_a_large_result_goes_to_result_storage_and_the_store_keeps_its_reference(
    default_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from legato.client import Client

    storage = tmp_path / "results"
    monkeypatch.setenv("LEGATO_RESULT_STORAGE", str(storage))
    monkeypatch.setenv("LEGATO_REMOTE_RESULT_THRESHOLD", "4k")

    def body() -> tuple[int, int]:
        small, large = big_bytes.submit(1024), big_bytes.submit(64 * 1024)
        return length(small.result()), length(large)

    state = runner_flow(ProcessPoolTaskRunner(max_workers=2), body)(return_state=True)
    assert state.result() == (1024, 64 * 1024)
    runs = {r.call_key: r for r in default_store.list_task_runs(state.run_id)}
    small = default_store.get_task_result(runs["big_bytes[0]"].id)
    large = default_store.get_task_result(runs["big_bytes[1]"].id)
    assert small is not None and small.serializer == "pickle"  # under the threshold
    assert large is not None and large.serializer == "reference"
    reference = json.loads(large.payload)
    path = storage / state.run_id / f"{runs['big_bytes[1]'].id}.pickle"
    assert reference["url"] == str(path) and reference["size"] == path.stat().st_size
    assert len(large.payload) < 300  # the store holds the reference, not the value
    assert runs["big_bytes[1]"].has_result
    # The UI names the reference without loading the value; reading it loads the file.
    preview = Client(default_store).task_result_preview(runs["big_bytes[1]"])
    assert preview is not None and str(path) in preview and "bytes kept" in preview
    from legato.engine.results import deserialize
    from legato.errors import ResultNotAvailableError

    assert deserialize(large, "big_bytes[1]") == bytes(range(256)) * 256
    path.unlink()
    with pytest.raises(ResultNotAvailableError, match=r"result storage at .*restore the file"):
        deserialize(large, "big_bytes[1]")


def test_a_bad_result_threshold_setting_is_refused_clearly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from legato.errors import ConfigurationError
    from legato.settings import remote_result_threshold

    monkeypatch.setenv("LEGATO_REMOTE_RESULT_THRESHOLD", "lots")
    with pytest.raises(ConfigurationError, match=r"is not a size; set it to bytes, e.g. 1048576"):
        remote_result_threshold()
    monkeypatch.setenv("LEGATO_REMOTE_RESULT_THRESHOLD", "2M")
    assert remote_result_threshold() == 2 * 1024 * 1024
