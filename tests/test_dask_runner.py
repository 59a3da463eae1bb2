"""DaskTaskRunner: bodies run on a real Dask cluster, the flow's process records.

One module-scoped `distributed.LocalCluster` of two worker processes (each
declaring one "GPU" resource) serves most tests; the crash test runs a real
``legato run`` against it, kills it with SIGKILL and resumes it.
"""

from __future__ import annotations

import os
import signal
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from _remote_runners import check_killed_run_resumes_without_resending, comparable, run_python
from _remote_runners import wait_until_true as wait_until
from legato import StateType, flow, get_run_logger, task
from legato.client import Client
from legato.engine.monitor import get_monitor
from legato.errors import (
    ConfigurationError,
    TaskArgumentNotPicklableError,
    TaskCallError,
    TaskTimeoutError,
)
from legato.store.base import Store
from legato.task_runners import DaskTaskRunner, ThreadPoolTaskRunner, get_dask_client

distributed = pytest.importorskip("distributed")

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning:distributed"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning:tornado"),
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
    pytest.mark.filterwarnings("ignore:Port .* is already in use:UserWarning"),
]


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=2,
        processes=True,
        resources={"GPU": 1},
        dashboard_address=None,
    ) as local:
        yield local


@pytest.fixture(scope="module")
def dask_client(cluster: Any) -> Iterator[Any]:
    with distributed.Client(cluster, set_as_default=False) as client:
        yield client


def scheduler_task_count(client: Any) -> int:
    return int(client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks)))


@task
def square(x: int) -> int:
    return x * x


@task
def noted(journal: str, x: int) -> int:
    with open(journal, "a") as f:
        f.write(f"start {x}\n")
    time.sleep(0.05)
    with open(journal, "a") as f:
        f.write(f"done {x}\n")
    return x


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


@task(resources={"GPU": 2}, timeout_seconds=1)
def needs_two_gpus() -> int:
    return 2


@task(resources={"GPU": 1})
def needs_one_gpu() -> str:
    return str(distributed.get_worker().state.total_resources)


@task
def waits_for(release: str, started: str) -> str:
    Path(started).write_text("started")
    deadline = time.monotonic() + 30
    while not Path(release).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return "released"


@task
def bag_total(n: int) -> int:
    import dask
    import dask.bag as db

    with get_dask_client() as client:
        odd = client.compute(db.from_sequence(range(n), npartitions=3).filter(lambda v: v % 2))
        parts = [dask.delayed(sum)(range(i, n, 4)) for i in range(4)]
        total = client.compute(dask.delayed(sum)(parts)).result()
        return int(total) + len(odd.result())


def on(cluster: Any, body: Callable[..., Any], **options: Any) -> Any:
    runner = DaskTaskRunner(address=cluster.scheduler_address, **options)
    return flow(name="dask-flow", task_runner=runner)(body)


def test_a_map_of_1000_is_recorded_as_under_the_thread_runner(
    default_store: Store, cluster: Any
) -> None:
    def body() -> list[int]:
        return square.map(range(1000)).result()

    records = {}
    for name, make in (
        ("threads", lambda: flow(name="dask-flow", task_runner=ThreadPoolTaskRunner(4))(body)),
        ("dask", lambda: on(cluster, body)),
    ):
        state = make()(return_state=True)
        assert state.is_completed()
        assert state.result() == [x * x for x in range(1000)]
        runs = default_store.list_task_runs(state.run_id)
        assert len(runs) == 1000
        assert all(r.state is StateType.COMPLETED for r in runs)
        records[name] = sorted((comparable(r) for r in runs), key=lambda r: r["call_key"])
    assert records["dask"] == records["threads"]


class CountingDaskTaskRunner(DaskTaskRunner):
    """Counts the client round trips that send bodies and fetch their outcomes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sizes: dict[str, list[int]] = {"map": [], "gather": []}

    def duplicate(self) -> CountingDaskTaskRunner:  # each flow run uses a copy
        copy = cast(CountingDaskTaskRunner, super().duplicate())
        copy.sizes = self.sizes
        return copy

    def _start(self) -> None:
        super()._start()
        client = self._client
        for name in ("map", "gather"):
            self._count(client, name)

    def _count(self, client: Any, name: str) -> None:
        original = getattr(client, name)
        sizes = self.sizes[name]

        def counted(*args: Any, **kwargs: Any) -> Any:
            sizes.append(len(args[1] if name == "map" else args[0]))
            return original(*args, **kwargs)

        setattr(client, name, counted)


def test_a_busy_map_is_sent_and_gathered_in_batches(default_store: Store, cluster: Any) -> None:
    # While many bodies are out, calls are held back a little and go many per
    # client.map, and outcomes are fetched many per client.gather: one or two per
    # round trip (250 client.map calls here before) made a 10,000-item map 1.5x raw
    # Dask's time instead of ~1x.
    runner = CountingDaskTaskRunner(address=cluster.scheduler_address, in_flight=64)
    state = flow(name="dask-flow", task_runner=runner)(lambda: square.map(range(600)).result())(
        return_state=True
    )
    assert state.is_completed(), state
    assert state.result() == [x * x for x in range(600)]
    assert sum(runner.sizes["map"]) == 600
    assert sum(runner.sizes["gather"]) == 600
    assert len(runner.sizes["map"]) <= 100, runner.sizes["map"]
    assert len(runner.sizes["gather"]) <= 100, runner.sizes["gather"]


def test_a_temporary_cluster_is_started_and_closed_with_the_flow_run(
    default_store: Store,
) -> None:
    runner = DaskTaskRunner(cluster_kwargs={"n_workers": 1, "processes": False})
    seen: list[Any] = []

    def body() -> int:
        value = square.submit(7).result()
        return value

    @flow(name="dask-temp", task_runner=runner)
    def temp() -> int:
        from legato.engine.context import FLOW_CONTEXT

        ctx = FLOW_CONTEXT.get()
        assert ctx is not None
        result = body()
        runner_copy = ctx.runner
        assert isinstance(runner_copy, DaskTaskRunner)
        seen.append((runner_copy, runner_copy._cluster))
        return result

    assert temp() == 49
    ((used, local),) = seen
    assert used is not runner  # the run's own copy
    assert isinstance(local, distributed.LocalCluster)
    assert local.status.name == "closed"
    assert used._client is None and used._cluster is None
    assert runner._client is None  # the template never starts


def test_arguments_are_validated_and_copied(cluster: Any) -> None:
    with pytest.raises(ConfigurationError, match="cannot be given with it"):
        DaskTaskRunner(address="tcp://127.0.0.1:1", cluster_kwargs={"n_workers": 1})
    with pytest.raises(ConfigurationError, match="cluster_kwargs"):
        DaskTaskRunner(cluster_kwargs=[1])  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="address"):
        DaskTaskRunner(address="")
    runner = DaskTaskRunner(
        cluster_class="distributed.LocalCluster", cluster_kwargs={"n_workers": 1}
    )
    copy = runner.duplicate()
    assert isinstance(copy, DaskTaskRunner)
    assert copy.cluster_kwargs == {"n_workers": 1}
    assert copy.cluster_kwargs is not runner.cluster_kwargs
    assert copy.cluster_class == "distributed.LocalCluster"
    bad = DaskTaskRunner(cluster_class="distributed.NoSuchCluster")
    with pytest.raises(ConfigurationError, match="NoSuchCluster"):
        bad.client  # noqa: B018


def test_an_unpicklable_argument_fails_clearly_naming_the_parameter(
    default_store: Store, cluster: Any
) -> None:
    def body() -> int:
        return takes_lock.submit(threading.Lock()).result()

    state = on(cluster, body)(return_state=True)
    assert state.is_failed()
    with pytest.raises(TaskArgumentNotPicklableError) as raised:
        state.result()
    assert raised.value.parameter == "lock"
    (run,) = default_store.list_task_runs(state.run_id)
    assert run.attempts == 1


def test_remote_log_lines_land_in_the_run_logs_in_order(default_store: Store, cluster: Any) -> None:
    def body() -> list[int]:
        return chatty.map([1, 2, 3]).result()

    state = on(cluster, body)(return_state=True)
    assert state.is_completed()
    runs = {r.call_key: r for r in default_store.list_task_runs(state.run_id)}
    logs = default_store.read_logs(state.run_id)
    for i, x in enumerate([1, 2, 3]):
        mine = [line.message for line in logs if line.task_run_id == runs[f"chatty[{i}]"].id]
        assert len(mine) == 3, mine
        assert mine[0].startswith(f"first line of {x} (pid ")
        assert f"(pid {os.getpid()})" not in mine[0]
        assert mine[1:] == [f"printed by {x}", f"last line of {x}"]


def test_resources_reach_dask_and_a_timeout_cancels_the_remote_future(
    default_store: Store, cluster: Any, dask_client: Any
) -> None:
    def body() -> tuple[str, int]:
        # No worker has two GPUs: that body stays pending until its timeout.
        return needs_one_gpu.submit().result(), needs_two_gpus.submit().result()

    started = time.monotonic()
    state = on(cluster, body)(return_state=True)
    assert time.monotonic() - started < 30
    assert state.is_failed()
    with pytest.raises(TaskTimeoutError):
        state.result()
    runs = {r.task_name: r for r in default_store.list_task_runs(state.run_id)}
    assert runs["needs_one_gpu"].state is StateType.COMPLETED
    assert runs["needs_two_gpus"].state is StateType.FAILED
    wait_until(lambda: scheduler_task_count(dask_client) == 0, "the pending body to be dropped")


def test_get_dask_client_computes_dask_collections_inside_a_task(
    default_store: Store, cluster: Any
) -> None:
    state = on(cluster, lambda: bag_total.submit(100).result())(return_state=True)
    assert state.is_completed(), state
    assert state.result() == sum(range(100)) + 50
    with pytest.raises(TaskCallError, match="Dask worker"), get_dask_client():
        pass


def test_a_cancelled_run_cancels_its_remote_body(
    default_store: Store,
    cluster: Any,
    dask_client: Any,
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
        target=lambda: outcome.append(on(cluster, body)(return_state=True)), daemon=True
    )
    thread.start()
    try:
        wait_until(started.exists, "the remote body to start")
        (run,) = default_store.list_flow_runs(limit=1)
        Client().cancel_run(run.id)
        thread.join(timeout=20)
        assert not thread.is_alive(), "the run did not stop on cancel"
    finally:
        release.write_text("go")
        thread.join(timeout=30)
    (state,) = outcome
    assert state.type is StateType.CANCELLED
    (task_run,) = default_store.list_task_runs(run.id)
    assert task_run.state is StateType.CANCELLED
    # The scheduler forgot the body (its thread ends on its own; Dask cannot interrupt it).
    wait_until(lambda: scheduler_task_count(dask_client) == 0, "the body to be cancelled")


def test_a_killed_worker_does_not_lose_or_repeat_recorded_tasks(
    default_store: Store, cluster: Any, dask_client: Any, tmp_path: Path
) -> None:
    journal = tmp_path / "journal.txt"
    n = 60

    def body() -> list[int]:
        return noted.map(str(journal), range(n)).result()

    outcome: list[Any] = []
    thread = threading.Thread(
        target=lambda: outcome.append(on(cluster, body)(return_state=True)), daemon=True
    )
    thread.start()

    def some_done() -> bool:
        runs = default_store.list_flow_runs(limit=1)
        counts = default_store.count_task_runs(runs[0].id) if runs else {}
        return counts.get(StateType.COMPLETED, 0) >= 10

    wait_until(some_done, "ten tasks to complete")
    pids = dask_client.run(os.getpid)
    victim = sorted(pids.values())[0]
    (run,) = default_store.list_flow_runs(limit=1)
    done_before = {
        t.call_key for t in default_store.list_task_runs(run.id) if t.state is StateType.COMPLETED
    }
    os.kill(victim, signal.SIGKILL)
    thread.join(timeout=120)
    assert not thread.is_alive()
    (state,) = outcome
    assert state.is_completed(), state
    assert state.result() == list(range(n))
    runs = default_store.list_task_runs(run.id)
    assert sorted(r.call_key for r in runs) == sorted(f"noted[{i}]" for i in range(n))
    lines = journal.read_text().splitlines()
    for key in done_before:
        i = int(key.removeprefix("noted[").removesuffix("]"))
        assert lines.count(f"done {i}") == 1, (key, lines)
    assert {f"done {i}" for i in range(n)} <= set(lines)
    dask_client.wait_for_workers(2, timeout=60)  # the nanny restarts the worker


def test_a_killed_flow_process_resumes_without_resubmitting_completed_keys(
    default_store: Store, legato_home: Path, tmp_path: Path, cluster: Any
) -> None:
    check_killed_run_resumes_without_resending(
        default_store,
        legato_home,
        tmp_path,
        "from legato.task_runners import DaskTaskRunner",
        'DaskTaskRunner(address=os.environ["LEGATO_TEST_RUNNER_ADDRESS"])',
        cluster.scheduler_address,
    )


PREFECT_SCRIPT = textwrap.dedent(
    """
    from prefect import flow, task
    from prefect_dask import DaskTaskRunner, get_dask_client
    import legato.task_runners


    @task
    def double(x: int) -> int:
        return 2 * x


    def check():
        assert DaskTaskRunner is legato.task_runners.DaskTaskRunner
        assert get_dask_client is legato.task_runners.get_dask_client
        return DaskTaskRunner
    """
)


def test_prefect_dask_imports_resolve_under_the_shim(tmp_path: Path) -> None:
    script = tmp_path / "pd.py"
    script.write_text(PREFECT_SCRIPT + "\nprint(check().__name__)\n")
    done = run_python("-m", "legato.prefect", str(script))
    assert done.returncode == 0, done.stderr
    assert "DaskTaskRunner" in done.stdout


def test_importing_legato_does_not_import_dask() -> None:
    code = (
        "import sys, legato, legato.task_runners\n"
        "runner = legato.task_runners.DaskTaskRunner\n"
        "assert not {'dask', 'distributed'} & set(sys.modules), sorted(sys.modules)\n"
    )
    done = run_python("-c", code)
    assert done.returncode == 0, done.stderr
