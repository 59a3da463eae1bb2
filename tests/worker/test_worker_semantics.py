"""What a run means under workers, on both backends: retries, timeouts, cancels, fencing.

- A flow's retry budget lives in the store (``retries_used``): ``retries=N`` is
  at most N + 1 attempts whatever the number of takeovers, and a worker's run
  waits for its retry back in its queue, so the worker's kill deadline (which
  starts when a run is claimed) follows the attempt, not the whole wait.
- A cancel request to a worker's run stops it: the child stops at its next task
  boundary, and a child stuck in a long task is killed ``--grace-seconds`` after
  the worker noticed the request; the run ends ``cancelled`` either way.
- A child whose run was taken over (it froze, its lease lapsed) writes nothing
  more once it wakes up: it exits with code 4 and one line on stderr.

Same harness as test_worker.py: real `legato worker` processes, a side-effect
journal the flows append to, lease 2 s and heartbeats every 0.2 s.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from test_worker import Side, Workers, state_of, wait_for

from legato.client import Client
from legato.engine.ids import new_id
from legato.engine.liveness import current_owner
from legato.records import FlowRun
from legato.states import StateType
from legato.store import reset_default_store

# Attempt counting and fencing are store operations: both backends. The worker's own
# decisions (kill deadlines, cancel requests) run on SQLite only, to keep this quick.
both_backends = pytest.mark.usefixtures("backend")

FLOWS = """
import os
import time

from legato import flow, task


def note(text: str) -> None:
    with open(os.environ["SIDE_EFFECTS"], "a") as f:
        f.write(text + "\\n")


def marker(name: str) -> str:
    return os.path.join(os.environ["MARKERS"], name)


def first_time(name: str) -> bool:
    if os.path.exists(marker(name)):
        return False
    open(marker(name), "w").close()
    return True


def wait_for_file(name: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not os.path.exists(marker(name)) and time.monotonic() < deadline:
        time.sleep(0.05)


@task
def step(tag: str, name: str) -> str:
    note(f"{tag} {name}")
    return name


@flow(retries=1, retry_delay_seconds=3)
def always_fails(tag: str) -> None:
    note(f"{tag} attempt")
    note(f"{tag} failing")
    raise RuntimeError(f"{tag} fails every time")


@flow(retries=1)
def fails_then_holds(tag: str) -> None:
    note(f"{tag} attempt")
    if os.path.exists(marker(f"{tag}-failed")) and first_time(f"{tag}-held"):
        note(f"{tag} holding")  # the retry: it waits here until its process is killed
        wait_for_file(f"{tag}-never")
    open(marker(f"{tag}-failed"), "w").close()
    note(f"{tag} failing")
    raise RuntimeError(f"{tag} fails every time")


@flow(timeout_seconds=1, retries=1, retry_delay_seconds=3)
def fails_fast_once(tag: str) -> str:
    note(f"{tag} attempt {os.getpid()}")
    if first_time(f"{tag}-failed"):
        raise RuntimeError(f"{tag} fails the first time")
    return step(tag, "done")


@task
def blocks(tag: str) -> None:
    note(f"{tag} blocking")
    wait_for_file(f"{tag}-never")  # a long sync task: 60 s unless stopped
    note(f"{tag} unblocked")


@flow
def long_task(tag: str) -> None:
    blocks(tag)
    step(tag, "after")


@task
def short(tag: str, n: int) -> int:
    if n == 0:
        note(f"{tag} looping")
    time.sleep(0.02)
    return n


@flow
def many_short(tag: str) -> int:
    n = 0
    while n < 3000 and not os.path.exists(marker(f"{tag}-never")):
        short(tag, n)
        n += 1
    return n


@task
def hold_once(tag: str) -> str:
    if first_time(f"{tag}-held"):
        note(f"{tag} holding")
        wait_for_file(f"{tag}-release")
    note(f"{tag} hold done {os.getpid()}")
    return "held"


@flow
def holder(tag: str) -> list[str]:
    return [step(tag, "a"), hold_once(tag), step(tag, "c")]
"""


@pytest.fixture
def markers(tmp_path: Path) -> Path:
    return tmp_path / "markers"


@pytest.fixture
def project(tmp_path: Path, markers: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    flows = tmp_path / "flows.py"
    flows.write_text(FLOWS)
    markers.mkdir()
    monkeypatch.setenv("SIDE_EFFECTS", str(tmp_path / "side-effects.txt"))
    monkeypatch.setenv("MARKERS", str(markers))
    monkeypatch.setenv("LEGATO_LOG_TO_CONSOLE", "0")
    monkeypatch.setenv("LEGATO_HEARTBEAT_SECONDS", "0.2")
    monkeypatch.setenv("LEGATO_LEASE_SECONDS", "2")
    return flows


@pytest.fixture
def side(tmp_path: Path) -> Side:
    return Side(tmp_path / "side-effects.txt")


@pytest.fixture
def client() -> Iterator[Client]:
    reset_default_store()
    c = Client()
    yield c
    c.store.close()


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Workers]:
    started = Workers(tmp_path)  # each with --lease-seconds 2
    yield started
    started.stop_all()


def get(client: Client, run: FlowRun) -> FlowRun:
    found = client.store.get_flow_run(run.id)
    assert found is not None
    return found


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


# --- item 1: flow retries are counted in the store ----------------------------------------


@both_backends
def test_a_flow_retry_under_a_worker_makes_exactly_retries_plus_one_attempts(
    project: Path, client: Client, workers: Workers, side: Side
) -> None:
    # The retry wait (3 s) is longer than the lease (2 s): a wait that neither kept
    # its lease nor went back to the queue was claimed again with a fresh budget.
    client.deploy(f"{project}:always_fails", name="fails")
    run = client.trigger("fails", {"tag": "f"})
    workers.start()
    wait_for(lambda: "f failing" in side.lines(), "the first attempt failed")
    # The retry waits in the queue, owned by nobody, its attempt counted.
    wait_for(lambda: state_of(client, run) is not StateType.RUNNING, "the attempt recorded")
    waiting = get(client, run)
    assert waiting.state is StateType.SCHEDULED and waiting.owner is None
    assert waiting.retries_used == 1
    assert "queued again for a retry" in (waiting.state_message or "")
    wait_for(lambda: state_of(client, run) is StateType.FAILED, "the run failed")
    assert side.counts() == Counter({"f attempt": 2, "f failing": 2})
    final = get(client, run)
    assert final.retries_used == 1 and final.attempts == 2
    assert final.error is not None and final.error.type == "RuntimeError"


@both_backends
def test_a_takeover_does_not_renew_the_retry_budget(
    project: Path, client: Client, workers: Workers, side: Side
) -> None:
    # The first attempt fails; its retry is killed with its worker and taken over by
    # another worker: the takeover is the last attempt the budget allows.
    client.deploy(f"{project}:fails_then_holds", name="fails")
    run = client.trigger("fails", {"tag": "k"})
    doomed = workers.start()
    wait_for(lambda: "k holding" in side.lines(), "the retry reached its wait")
    owner = get(client, run).owner
    assert owner is not None
    workers.start()  # takes the run over once its lease lapses
    doomed.send_signal(signal.SIGKILL)  # the worker, then its child (the run's owner)
    doomed.wait(10)
    try:
        os.kill(owner.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass  # it died with its worker already
    wait_for(lambda: state_of(client, run) is StateType.FAILED, "the run failed")
    assert side.lines() == [
        "k attempt",
        "k failing",  # attempt 1: retries_used becomes 1
        "k attempt",
        "k holding",  # attempt 2: killed
        "k attempt",
        "k failing",  # attempt 3, in another worker: no retry left
    ]
    final = get(client, run)
    assert final.retries_used == 1 and final.attempts == 3


# --- item 3: the worker's kill deadline follows the attempt --------------------------------


def test_a_retry_wait_longer_than_the_timeout_is_not_killed(
    project: Path,
    client: Client,
    workers: Workers,
    side: Side,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # timeout 1 s + 0.5 s of grace: a deadline counted from the claim of the whole
    # child would fire 1.5 s into the 3 s retry wait.
    monkeypatch.setenv("LEGATO_WORKER_TIMEOUT_GRACE_SECONDS", "0.5")
    client.deploy(f"{project}:fails_fast_once", name="fast-fail")
    run = client.trigger("fast-fail", {"tag": "t"})
    workers.start()
    wait_for(lambda: state_of(client, run) is StateType.COMPLETED, "the second attempt completed")
    attempts = [line for line in side.lines() if line.startswith("t attempt ")]
    assert len(attempts) == 2 and attempts[0] != attempts[1]  # two processes, one each
    assert side.counts()["t done"] == 1
    final = get(client, run)
    assert final.retries_used == 1 and final.attempts == 2
    logs = workers.logs()
    assert f"({run.id}) ended scheduled" in logs  # the first child exited by itself
    assert "timed out" not in logs and "timeout" not in (final.state_message or "")
    messages = [log.message for log in client.read_logs(run.id)]
    assert not any("ran past its timeout" in m for m in messages), messages
    assert "ran past its timeout" not in logs and "crashed" not in logs, logs


# --- item 8: a worker acts on cancel requests ----------------------------------------------


def test_a_cancelled_run_stuck_in_a_long_task_is_stopped_and_the_worker_goes_on(
    project: Path, client: Client, workers: Workers, side: Side
) -> None:
    client.deploy(f"{project}:long_task", name="long")
    client.deploy(f"{project}:many_short", name="short")
    run = client.trigger("long", {"tag": "l"})
    worker = workers.start("--grace-seconds", "2", "--concurrency", "1")
    wait_for(lambda: "l blocking" in side.lines(), "the long task started")
    owner = get(client, run).owner
    assert owner is not None
    asked = client.cancel_run(run.id)
    assert asked.state is StateType.RUNNING and asked.cancel_requested
    # The task would block for 60 s: the worker kills it 2 s after it noticed.
    wait_for(lambda: state_of(client, run) is StateType.CANCELLED, "the run cancelled", 20)
    wait_for(lambda: gone(owner.pid), "its process gone", 10)
    final = get(client, run)
    assert "the worker stopped it" in (final.state_message or "")
    assert "l unblocked" not in side.lines() and "l after" not in side.lines()

    # The one slot is free again; a run whose tasks are short stops by itself.
    other = client.trigger("short", {"tag": "s"})
    wait_for(lambda: "s looping" in side.lines(), "the next run started")
    client.cancel_run(other.id)
    wait_for(lambda: state_of(client, other) is StateType.CANCELLED, "it cancelled itself")
    stopped = get(client, other)
    assert stopped.state_message == "cancelled on request"  # the engine's, not the worker's
    wait_for(lambda: f"({other.id}) ended cancelled" in workers.logs(), "the worker saw it end")
    assert f"({other.id}) cancelled: stopped its process" not in workers.logs()
    assert worker.poll() is None  # and the worker is still at work


# --- items 4 and 5: a run taken over from a frozen process ---------------------------------


@both_backends
def test_a_frozen_child_whose_run_was_taken_over_writes_nothing_more_and_exits_4(
    project: Path,
    client: Client,
    workers: Workers,
    side: Side,
    markers: Path,
) -> None:
    client.deploy(f"{project}:holder", name="holder")
    run = client.trigger("holder", {"tag": "h"})
    # Claimed as a worker does, and executed by the worker's child program, here
    # started by hand: its exit code and its stderr are this test's to read.
    store = client.store
    token = new_id()
    claimed = store.claim_flow_run(
        ["default"], current_owner(token), now=store.clock(), lease_seconds=2
    )
    assert claimed is not None and claimed.id == run.id
    old = subprocess.Popen(
        [sys.executable, "-m", "legato.worker.child", run.id],
        env={**os.environ, "LEGATO_CLAIM_TOKEN": token},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: "h holding" in side.lines(), "the old process reached its wait")
        old.send_signal(signal.SIGSTOP)  # frozen: no heartbeat, no write
        workers.start()
        wait_for(lambda: state_of(client, run) is StateType.COMPLETED, "a worker took it over")
        done = get(client, run)
        (markers / "h-release").touch()
        old.send_signal(signal.SIGCONT)
        out, err = old.communicate(timeout=30)
    finally:
        if old.poll() is None:
            old.kill()
            old.wait()
    assert old.returncode == 4, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "no longer owns flow run" in lines[0], err
    assert out == ""

    counts = side.counts()
    assert counts["h a"] == 1 and counts["h c"] == 1  # nothing ran twice but the held task
    assert counts[f"h hold done {old.pid}"] == 1  # the old one woke up inside it...
    after = get(client, run)  # ... and wrote nothing: the new owner's result stands
    assert after.state is StateType.COMPLETED and after.end_time == done.end_time
    assert client.run_result(run.id) == ["a", "held", "c"]
    keys = [t.call_key for t in store.list_task_runs(run.id)]
    assert sorted(keys) == ["hold_once[0]", "step[0]", "step[1]"]
    assert all(t.state is StateType.COMPLETED for t in store.list_task_runs(run.id))
