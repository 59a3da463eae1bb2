"""Tasks waiting for a global limit share one listener per process (both backends).

Before, every waiting task opened a listener of its own: on PostgreSQL one
connection per waiting task, outside the pool.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
from _engine_support import legato_cmd, subprocess_env, wait_until
from test_limits import max_overlap, spans

from legato import flow, task
from legato.client import Client
from legato.engine.limits import forget_known_limits, limit_waiters
from legato.errors import StoreError
from legato.records import utcnow
from legato.states import StateType
from legato.store.base import Store
from legato.store.notifications import LIMIT_SLOTS_FREED, ChangeListener, SharedListener
from legato.task_runners import ThreadPoolTaskRunner

CROWD = """
import os
import time
from pathlib import Path

from legato import flow, task
from legato.task_runners import ThreadPoolTaskRunner


def note(text):
    with open(os.environ["SPANS"], "a") as f:
        f.write(text + "\\n")


@task(tags=["gate"])
def step(n: int) -> int:
    note(f"start {time.time()!r}")
    go = Path(os.environ["GO"])
    while not go.exists():  # the first holder holds on until the test has looked
        time.sleep(0.01)
    note(f"end {time.time()!r}")
    return n


@flow(task_runner=ThreadPoolTaskRunner(max_workers=50))
def crowd(items: int = 50) -> int:
    return sum(step.map(range(items)).result())
"""

PROCESSES = 4
PER_PROCESS = 50
POOL_SIZE = 2
APP = "legato-crowd"


def connections(url: str) -> tuple[int, int]:
    """(connections of the crowd's processes, how many of them listen)."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE query ILIKE 'LISTEN%%') "
            "FROM pg_stat_activity WHERE datname = current_database() "
            "AND application_name = %s",
            (APP,),
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def waiting_tasks(client: Client) -> int:
    runs = client.list_runs(states=[StateType.RUNNING])
    return sum(
        sum("waits for a slot" in line.message for line in client.read_logs(run.id)) for run in runs
    )


def test_two_hundred_waiting_tasks_in_four_processes_share_four_listeners(
    backend: str, tmp_path: Path, legato_home: Path
) -> None:
    client = Client()
    client.set_limit("gate", 1)
    flows = tmp_path / "crowd_flows.py"
    flows.write_text(CROWD)
    spans_file, go = tmp_path / "spans.txt", tmp_path / "go"
    extra = {"SPANS": str(spans_file), "GO": str(go), "LEGATO_HEARTBEAT_SECONDS": "0.2"}
    url = os.environ.get("LEGATO_DATABASE_URL", "")
    if backend == "postgres":
        assert not urlsplit(url).query
        extra["LEGATO_DATABASE_URL"] = f"{url}?application_name={APP}"
        extra["LEGATO_PG_POOL_SIZE"] = str(POOL_SIZE)
    env = subprocess_env(legato_home, **extra)
    procs = [
        subprocess.Popen(
            legato_cmd("run", f"{flows}:crowd", "--json"),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(PROCESSES)
    ]
    try:
        seen: list[tuple[int, int]] = []

        def all_waiting() -> bool:
            if backend == "postgres":
                seen.append(connections(url))
            return len(spans(spans_file, "start")) == 1 and waiting_tasks(client) >= 199

        wait_until(all_waiting, timeout=60, what="one task holding the slot, 199 waiting")
        if backend == "postgres":
            seen.append(connections(url))
            most, listening = max(total for total, _ in seen), max(ls for _, ls in seen)
            # One listener per process, whatever the number of waiting tasks; the
            # rest is the processes' pools (before: a connection per waiting task).
            assert listening <= PROCESSES, seen
            assert most <= PROCESSES * (POOL_SIZE + 1), seen
        go.touch()
        for proc in procs:
            _, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
    finally:
        go.touch()
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    starts, ends = spans(spans_file, "start"), spans(spans_file, "end")
    assert len(starts) == len(ends) == PROCESSES * PER_PROCESS
    assert max_overlap(starts, ends) == 1
    assert client.limits()[0].active == 0


# -- one process: one listener wakes every waiter ---------------------------------


def shared_listener(
    store: Store, *, tick: float = 60.0, opener: Callable[[], ChangeListener] | None = None
) -> SharedListener:
    # By default a tick far beyond any wait here: only a notification wakes anyone.
    return SharedListener(
        opener or (lambda: store.listen([LIMIT_SLOTS_FREED])),
        LIMIT_SLOTS_FREED,
        store.display_url,
        tick=tick,
        linger=0.0,
    )


@contextmanager
def listening(shared: SharedListener) -> Iterator[None]:
    """Keep ``shared`` listening (one waiter holds it open) for the block."""
    release = threading.Event()

    def hold() -> None:
        with shared.waiting():
            release.wait(60)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        wait_until(lambda: shared.listening, what="the shared listener to listen")
        yield
    finally:
        release.set()
        holder.join(30)


def test_one_notification_wakes_every_waiter_of_a_process(default_store: Store) -> None:
    shared = shared_listener(default_store)
    woke: list[str] = []
    with listening(shared):
        mark, _ = shared.snapshot()

        def thread_waiter(n: int) -> None:
            with shared.waiting():
                if shared.wait(mark, 30):  # False: nothing woke it for 30 s
                    woke.append(f"thread {n}")

        async def coroutine_waiter(n: int) -> None:
            with shared.waiting():
                if await shared.wait_async(mark, 30):
                    woke.append(f"coroutine {n}")

        async def coroutines() -> None:
            await asyncio.gather(*(coroutine_waiter(n) for n in range(3)))

        threads = [threading.Thread(target=thread_waiter, args=(n,)) for n in range(5)]
        threads.append(threading.Thread(target=lambda: asyncio.run(coroutines())))
        for thread in threads:
            thread.start()
        wait_until(lambda: shared.waiters == 1 + 5 + 3, what="eight waiters and the holder")
        assert woke == []
        default_store.notify(LIMIT_SLOTS_FREED)
        for thread in threads:
            thread.join(40)
    assert sorted(woke) == [f"coroutine {n}" for n in range(3)] + [f"thread {n}" for n in range(5)]


def test_an_outage_of_the_listener_is_reported_once_and_waiters_still_wake(
    default_store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    failures = iter(range(3))

    def flaky_listen() -> ChangeListener:
        if next(failures, None) is not None:
            raise StoreError("the store is down (test)")
        return default_store.listen([LIMIT_SLOTS_FREED])

    shared = shared_listener(default_store, tick=0.05, opener=flaky_listen)
    with shared.waiting():
        mark, _ = shared.snapshot()
        assert shared.wait(mark, 30)  # woken during the outage: waiters look again
        wait_until(lambda: shared.listening, what="the listener to reconnect")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2, lines  # three failures, one report; then the recovery
    assert "failed: the store is down (test)" in lines[0]
    assert lines[1].endswith(" again")


def test_a_listener_whose_session_is_ended_reconnects(
    backend: str, default_store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    if backend != "postgres":
        pytest.skip("ends the listener's PostgreSQL session")
    shared = shared_listener(default_store, tick=0.1)
    with listening(shared):
        with psycopg.connect(os.environ["LEGATO_DATABASE_URL"], autocommit=True) as conn:
            ended = conn.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND query ILIKE 'LISTEN%%'"
            ).fetchone()
        assert ended == (1,)
        wait_until(
            lambda: capsys.readouterr().err.rstrip().endswith(" again"),
            what="the listener to reconnect",
        )
        mark, _ = shared.snapshot()
        assert shared.wait(mark, 30)


def test_a_silent_listener_never_leaves_waiters_asleep() -> None:
    silent = SharedListener(lambda: None, LIMIT_SLOTS_FREED, "nowhere", tick=60.0)
    with silent.waiting():
        mark, news = silent.snapshot()
        assert not silent.wait(mark, 0.2)  # nobody spoke: the waiter woke itself...
        assert silent.snapshot()[1] > news  # ...and told the others to look again


@task(tags=["turns"])
def turn_step(n: int) -> int:
    time.sleep(0.02)
    return n


@flow(task_runner=ThreadPoolTaskRunner(max_workers=30))
def turns_flow(items: int) -> int:
    return sum(turn_step.map(range(items)).result())


def test_waiting_tasks_of_one_process_ask_the_store_in_turn(
    default_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    default_store.set_limit("turns", 1, now=utcnow())
    forget_known_limits()
    asked: list[str] = []
    acquire = default_store.acquire_limit_slot

    def counting(name: str, holder: str, *, now: datetime, ttl_seconds: float) -> bool:
        asked.append(holder)
        return acquire(name, holder, now=now, ttl_seconds=ttl_seconds)

    monkeypatch.setattr(default_store, "acquire_limit_slot", counting)
    assert turns_flow(30) == sum(range(30))
    # Every task asks once on arrival; then, per hand-over, about one waiter that
    # takes the slot and one that finds it gone (and a few ticks). Without turns,
    # every waiter would ask at every hand-over: some 30 * 29 / 2 = 435 times.
    assert len(asked) <= 4 * 30, len(asked)
    assert limit_waiters(default_store).shared.waiters == 0


RUNNING: list[int] = []  # async_step calls running now (one loop: no lock needed)
GAPS: list[float] = []  # how long async_crowd's loop went without turning, each time


@task(tags=["one_at_a_time"])
async def async_step(n: int) -> int:
    RUNNING.append(n)
    try:
        await asyncio.sleep(0.01)
        if len(RUNNING) > 1:
            raise AssertionError(f"steps {RUNNING} hold the limit of one slot together")
    finally:
        RUNNING.remove(n)
    return n


@flow
async def async_crowd(items: int) -> int:
    done = False

    async def ticker() -> None:
        last = time.monotonic()
        while not done:
            await asyncio.sleep(0.005)
            now = time.monotonic()
            GAPS.append(now - last)
            last = now

    ticking = asyncio.ensure_future(ticker())
    values = await asyncio.gather(*(async_step(n) for n in range(items)))
    done = True
    await ticking
    return sum(values)


def test_async_tasks_wait_for_a_limit_without_blocking_their_loop(default_store: Store) -> None:
    default_store.set_limit("one_at_a_time", 1, now=utcnow())
    forget_known_limits()
    GAPS.clear()
    assert asyncio.run(async_crowd(12)) == sum(range(12))
    # Waiting blocks no thread: the loop turned all along (the store calls to take
    # and give back slots are short). A waiter blocking the loop would stall it
    # until the next tick of the listener (0.5 s), and since the holder could not
    # run meanwhile, for ever.
    assert GAPS and max(GAPS) < 0.4, max(GAPS)
    assert limit_waiters(default_store).shared.waiters == 0


@task(tags=["closed"])
async def closed_step() -> int:
    return 1


@flow
async def closed_flow() -> int:
    return await closed_step()


def test_cancelling_a_run_whose_async_task_waits_for_a_slot_stops_it(
    default_store: Store,
) -> None:
    client = Client()
    client.set_limit("closed", 0)
    forget_known_limits()
    result: list[object] = []

    def run_flow() -> None:
        result.append(asyncio.run(closed_flow(return_state=True)))  # type: ignore[call-arg]

    runner = threading.Thread(target=run_flow)
    runner.start()
    waiters = limit_waiters(default_store).shared
    wait_until(lambda: waiters.waiters == 1, what="the task to wait for a slot")
    [run] = client.list_runs(states=[StateType.RUNNING])
    client.cancel_run(run.id)
    runner.join(30)
    assert result and result[0].type is StateType.CANCELLED  # type: ignore[attr-defined]
    [task_run] = client.task_runs(run.id)
    assert task_run.state is StateType.CANCELLED
