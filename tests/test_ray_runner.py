"""RayTaskRunner: bodies run as real Ray tasks, the flow's process records.

One module-scoped local Ray instance (2 CPUs, declaring a custom "special"
resource and no GPU) serves most tests: the test process is its driver, and
runners without an address reuse that connection. The crash test runs a real
``legato run`` that joins the same instance by address, kills it with SIGKILL
and resumes it; the start-and-stop test runs its own instance in a subprocess.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from _remote_runners import check_killed_run_resumes_without_resending, comparable, run_python
from _remote_runners import wait_until_true as wait_until
from legato import StateType, flow, get_run_logger, task
from legato.client import Client
from legato.engine.monitor import get_monitor
from legato.errors import ConfigurationError, TaskArgumentNotPicklableError, TaskTimeoutError
from legato.store.base import Store
from legato.task_runners import RayTaskRunner, ThreadPoolTaskRunner

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def ray_address() -> Iterator[str]:
    temp_dir = tempfile.mkdtemp(prefix="lgray")  # short: Ray's socket paths live in it
    import cloudpickle

    # Ray's workers need not import this test module: its tasks travel by value.
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(
        num_cpus=2,
        resources={"special": 2},
        include_dashboard=False,
        log_to_driver=False,
        _temp_dir=temp_dir,
    )
    try:
        yield str(ray.get_runtime_context().gcs_address)
    finally:
        ray.shutdown()
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


def process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


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


@task(retries=3)
def takes_lock(lock: Any) -> int:
    return 1


@task(resources={"special": 1, "CPU": 0.5})
def needs_special() -> dict[str, float]:
    return dict(ray.get_runtime_context().get_assigned_resources())


@task(resources={"GPU": 1}, timeout_seconds=1)
def needs_a_gpu() -> int:
    return 1


@task
def waits_for(release: str, started: str) -> str:
    Path(started).write_text(str(os.getpid()))
    deadline = time.monotonic() + 60
    while not Path(release).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return "released"


@task(timeout_seconds=1)
def hangs(started: str) -> str:
    Path(started).write_text(str(os.getpid()))
    time.sleep(60)
    return "woke"


@task
def dies_once(journal: str) -> int:
    with open(journal, "a") as f:
        f.write(f"{os.getpid()}\n")
    if len(Path(journal).read_text().splitlines()) == 1:
        os.kill(os.getpid(), signal.SIGKILL)  # the worker process dies mid-body
    return 7


def on_ray(body: Callable[..., Any], **options: Any) -> Any:
    return flow(name="ray-flow", task_runner=RayTaskRunner(**options))(body)


def test_a_map_of_200_is_recorded_as_under_the_thread_runner(
    default_store: Store, ray_address: str
) -> None:
    def body() -> list[int]:
        return square.map(range(200)).result()

    records = {}
    for name, make in (
        ("threads", lambda: flow(name="ray-flow", task_runner=ThreadPoolTaskRunner(4))(body)),
        ("ray", lambda: on_ray(body)),
    ):
        state = make()(return_state=True)
        assert state.is_completed(), state
        assert state.result() == [x * x for x in range(200)]
        runs = default_store.list_task_runs(state.run_id)
        assert len(runs) == 200
        records[name] = sorted((comparable(r) for r in runs), key=lambda r: r["call_key"])
    assert records["ray"] == records["threads"]
    # The connection existed before the run: the runner used it and left it open.
    assert ray.is_initialized()


def test_arguments_are_validated_and_copied() -> None:
    with pytest.raises(ConfigurationError, match="address"):
        RayTaskRunner(address="")
    with pytest.raises(ConfigurationError, match="init_kwargs"):
        RayTaskRunner(init_kwargs=[1])  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="not in init_kwargs"):
        RayTaskRunner(init_kwargs={"address": "auto"})
    with pytest.raises(ConfigurationError, match="in_flight"):
        RayTaskRunner(in_flight=0)
    runner = RayTaskRunner(address="127.0.0.1:6379", init_kwargs={"num_cpus": 1})
    copy = runner.duplicate()
    assert isinstance(copy, RayTaskRunner)
    assert (copy.address, copy.init_kwargs) == ("127.0.0.1:6379", {"num_cpus": 1})
    assert copy.init_kwargs is not runner.init_kwargs


def test_an_unpicklable_argument_fails_clearly_naming_the_parameter(
    default_store: Store, ray_address: str
) -> None:
    state = on_ray(lambda: takes_lock.submit(threading.Lock()).result())(return_state=True)
    assert state.is_failed()
    with pytest.raises(TaskArgumentNotPicklableError, match="lock") as raised:
        state.result()
    assert raised.value.parameter == "lock"
    (run,) = default_store.list_task_runs(state.run_id)
    assert run.attempts == 1  # not retried: it cannot succeed


def test_remote_log_lines_land_in_the_run_logs_in_order(
    default_store: Store, ray_address: str
) -> None:
    state = on_ray(lambda: chatty.map([1, 2, 3]).result())(return_state=True)
    assert state.is_completed(), state
    runs = {r.call_key: r for r in default_store.list_task_runs(state.run_id)}
    logs = default_store.read_logs(state.run_id)
    for i, x in enumerate([1, 2, 3]):
        mine = [line.message for line in logs if line.task_run_id == runs[f"chatty[{i}]"].id]
        assert len(mine) == 3, mine
        assert mine[0].startswith(f"first line of {x} (pid ")
        assert f"(pid {os.getpid()})" not in mine[0]  # ran in a Ray worker
        assert mine[1:] == [f"printed by {x}", f"last line of {x}"]


def test_resources_become_ray_options(default_store: Store, ray_address: str) -> None:
    # The instance declares "special" and no GPU: a call needing a GPU is infeasible,
    # Ray keeps it pending, and only the task's timeout ends it (cancelling it).
    def body() -> tuple[dict[str, float], int]:
        return needs_special.submit().result(), needs_a_gpu.submit().result()

    started = time.monotonic()
    state = on_ray(body)(return_state=True)
    assert time.monotonic() - started < 30
    assert state.is_failed()
    with pytest.raises(TaskTimeoutError):
        state.result()
    runs = {r.task_name: r for r in default_store.list_task_runs(state.run_id)}
    assert runs["needs_special"].state is StateType.COMPLETED
    assert runs["needs_a_gpu"].state is StateType.FAILED
    assigned = on_ray(lambda: needs_special.submit().result())()
    assert assigned == {"special": 1.0, "CPU": 0.5}


def test_a_timeout_cancels_the_remote_task(
    default_store: Store, ray_address: str, tmp_path: Path
) -> None:
    started = tmp_path / "started"
    state = on_ray(lambda: hangs.submit(str(started)).result())(return_state=True)
    assert state.is_failed()
    with pytest.raises(TaskTimeoutError):
        state.result()
    # Force-cancelled: the worker process running the body is killed.
    pid = int(started.read_text())
    wait_until(lambda: process_gone(pid), "the timed-out body's worker to be killed", 20)


def test_a_cancelled_run_cancels_its_remote_task(
    default_store: Store,
    ray_address: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monitor = get_monitor()
    monkeypatch.setattr(monitor, "interval", 0.05)
    monitor._wake.set()
    monitor._wake.clear()
    release, started = tmp_path / "release", tmp_path / "started"

    def body() -> str:
        return waits_for.submit(str(release), str(started)).result()

    outcome: list[Any] = []
    thread = threading.Thread(
        target=lambda: outcome.append(on_ray(body)(return_state=True)), daemon=True
    )
    thread.start()
    try:
        wait_until(started.exists, "the remote body to start")
        pid = int(started.read_text())
        (run,) = default_store.list_flow_runs(limit=1)
        Client().cancel_run(run.id)
        thread.join(timeout=20)
        assert not thread.is_alive(), "the run did not stop on cancel"
        wait_until(lambda: process_gone(pid), "the cancelled body's worker to be killed", 20)
    finally:
        release.write_text("go")
        thread.join(timeout=30)
    (state,) = outcome
    assert state.type is StateType.CANCELLED
    (task_run,) = default_store.list_task_runs(run.id)
    assert task_run.state is StateType.CANCELLED


def test_a_body_lost_with_its_worker_is_run_again_by_ray(
    default_store: Store, ray_address: str, tmp_path: Path
) -> None:
    journal = tmp_path / "journal.txt"
    state = on_ray(lambda: dies_once.submit(str(journal)).result())(return_state=True)
    assert state.is_completed(), state
    assert state.result() == 7
    first, second = journal.read_text().splitlines()
    assert first != second  # a new worker process
    (run,) = default_store.list_task_runs(state.run_id)
    assert run.attempts == 1  # not a retry of the task: nothing of the body was recorded


def test_a_killed_flow_process_resumes_without_resubmitting_completed_keys(
    default_store: Store, legato_home: Path, tmp_path: Path, ray_address: str
) -> None:
    check_killed_run_resumes_without_resending(
        default_store,
        legato_home,
        tmp_path,
        "from legato.task_runners import RayTaskRunner",
        'RayTaskRunner(address=os.environ["LEGATO_TEST_RUNNER_ADDRESS"])',
        ray_address,
    )


OWN_INSTANCE = textwrap.dedent(
    """
    import sys
    import tempfile

    import ray
    from legato import flow, task
    from legato.task_runners import RayTaskRunner


    @task
    def double(x: int) -> int:
        return 2 * x


    kwargs = {"num_cpus": 1, "include_dashboard": False, "_temp_dir": tempfile.mkdtemp()}


    @flow(task_runner=RayTaskRunner(init_kwargs=kwargs))
    def twice() -> list[int]:
        values = double.map([1, 2]).result()
        assert ray.is_initialized()
        return values


    assert not ray.is_initialized()
    assert twice() == [2, 4]
    assert not ray.is_initialized(), "the runner left its Ray instance running"
    print("ok")
    """
)


def test_a_runner_without_a_connection_starts_ray_and_shuts_it_down(
    legato_home: Path, tmp_path: Path
) -> None:
    script = tmp_path / "own.py"
    script.write_text(OWN_INSTANCE)
    env = {
        **os.environ,
        "LEGATO_HOME": str(legato_home),
        "LEGATO_LOG_TO_CONSOLE": "0",
        "RAY_ADDRESS": "",
    }
    done = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("ok")


PREFECT_SCRIPT = textwrap.dedent(
    """
    from prefect import flow, task
    from prefect_ray import RayTaskRunner
    import legato.task_runners

    assert RayTaskRunner is legato.task_runners.RayTaskRunner
    print(RayTaskRunner(address="127.0.0.1:6379"))
    """
)


def test_prefect_ray_import_resolves_under_the_shim(tmp_path: Path) -> None:
    script = tmp_path / "pr.py"
    script.write_text(PREFECT_SCRIPT)
    done = run_python("-m", "legato.prefect", str(script))
    assert done.returncode == 0, done.stderr
    assert "RayTaskRunner(address='127.0.0.1:6379')" in done.stdout


def test_importing_legato_does_not_import_ray() -> None:
    code = (
        "import sys, legato, legato.task_runners\n"
        "runner = legato.task_runners.RayTaskRunner\n"
        "assert 'ray' not in sys.modules, sorted(sys.modules)\n"
    )
    done = run_python("-c", code)
    assert done.returncode == 0, done.stderr
