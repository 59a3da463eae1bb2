"""Workers on real processes, on both backends: claiming, crashes, schedules, shutdown.

Each test starts `legato worker` processes against the test's store (SQLite
file or PostgreSQL database, through the environment), queues runs through
the client, and checks a side-effect journal the flows append to: a line per
completed task execution, so a task that ran twice shows twice.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from _waiting import wait_until
from legato.client import Client
from legato.records import FlowRun
from legato.schedules import make_schedule
from legato.states import StateType
from legato.store import reset_default_store

pytestmark = pytest.mark.usefixtures("backend")

FLOWS = """
import os
import signal
import time

import legato
from legato import flow, get_run_context, pause_flow_run, task
from legato.input import RunInput


def note(text: str) -> None:
    with open(os.environ["SIDE_EFFECTS"], "a") as f:
        f.write(text + "\\n")


@task
def step(tag: str, name: str, slow_first_time: float = 0.0) -> str:
    marker = os.path.join(os.environ["MARKERS"], f"{tag}-{name}")
    if slow_first_time and not os.path.exists(marker):
        open(marker, "w").close()
        note(f"{tag} {name} started")
        time.sleep(slow_first_time)
    note(f"{tag} {name}")
    return name


@flow
def tagged(tag: str = "", slow_first_time: float = 0.0) -> list[str]:
    tag = tag or get_run_context().flow_run_id
    return [step(tag, "a"), step(tag, "b", slow_first_time), step(tag, "c")]


@flow
def one_step(tag: str) -> str:
    return step(tag, "only")


@flow
def napper(tag: str, seconds: float) -> str:
    step(tag, "before")
    legato.sleep(seconds)
    return step(tag, "after")


@task
def timed_step(tag: str) -> None:
    note(f"{tag} start {time.time()!r}")
    time.sleep(0.3)
    note(f"{tag} end {time.time()!r}")


@flow
def timed(tag: str) -> None:
    timed_step(tag)


# 3 s, not 1: the retry must finish inside its own timeout even on a loaded machine
# (a retry that times out too runs `step` again, legitimately, and the count below
# would see "r done" twice).
@flow(timeout_seconds=3, retries=1)
def freezes_once(tag: str) -> str:
    marker = os.path.join(os.environ["MARKERS"], f"{tag}-froze")
    if not os.path.exists(marker):
        open(marker, "w").close()
        note(f"{tag} freezing")
        os.kill(os.getpid(), signal.SIGSTOP)  # no timeout inside the process can end this
    return step(tag, "done")


# No timeout and no retries: the lapsed lease is the only way out of the freeze,
# so exactly one takeover attempt runs `step` (a timeout could start a second).
@flow
def freezes_once_untimed(tag: str) -> str:
    marker = os.path.join(os.environ["MARKERS"], f"{tag}-froze")
    if not os.path.exists(marker):
        open(marker, "w").close()
        note(f"{tag} freezing")
        os.kill(os.getpid(), signal.SIGSTOP)
    return step(tag, "done")


@flow(timeout_seconds=1)
def always_freezes(tag: str) -> None:
    note(f"{tag} freezing")
    os.kill(os.getpid(), signal.SIGSTOP)


@task(tags=["db"])
def limited_step(tag: str, n: int) -> None:
    note(f"{tag}-{n} start {time.time()!r}")
    time.sleep(0.3)
    note(f"{tag}-{n} end {time.time()!r}")


@flow
def limited(tag: str) -> None:
    limited_step.map(tag, range(3)).wait()


@flow
def maybe_crash(tag: str, how: str = "") -> int:
    note(f"{tag} pid {os.getpid()}")
    if how == "exit":
        os._exit(3)
    if how == "segv":
        os.kill(os.getpid(), signal.SIGSEGV)
    if how == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    return os.getpid()


@flow
def versioned(tag: str) -> str:
    note(f"{tag} VERSION")
    return "VERSION"


class Approval(RunInput):
    ok: bool


@flow
def approval(tag: str) -> str:
    step(tag, "a")
    answer = pause_flow_run(wait_for_input=Approval)
    return step(tag, "yes" if answer.ok else "no")
"""


class Side:
    def __init__(self, path: Path) -> None:
        self.path = path

    def lines(self) -> list[str]:
        return self.path.read_text().splitlines() if self.path.exists() else []

    def counts(self) -> Counter[str]:
        return Counter(self.lines())


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    flows = tmp_path / "flows.py"
    flows.write_text(FLOWS)
    markers = tmp_path / "markers"
    markers.mkdir()
    monkeypatch.setenv("SIDE_EFFECTS", str(tmp_path / "side-effects.txt"))
    monkeypatch.setenv("MARKERS", str(markers))
    monkeypatch.setenv("LEGATO_LOG_TO_CONSOLE", "0")
    monkeypatch.setenv("LEGATO_HEARTBEAT_SECONDS", "0.2")
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


class Workers:
    """`legato worker` processes started by a test, stopped at its end."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        log = open(self.tmp_path / f"worker-{len(self.procs)}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "-m", "legato", "worker", "--lease-seconds", "2", *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(os.environ),
        )
        log.close()
        self.procs.append(proc)
        return proc

    def logs(self) -> str:
        return "\n".join(p.read_text() for p in sorted(self.tmp_path.glob("worker-*.log")))

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Workers]:
    started = Workers(tmp_path)
    yield started
    started.stop_all()


def wait_for(check: Callable[[], object], what: str, timeout: float = 60) -> None:
    wait_until(check, timeout=timeout, interval=0.05, what=what)


def state_of(client: Client, run: FlowRun) -> StateType:
    return client.store.get_flow_run(run.id).state  # type: ignore[union-attr]


# --- tests ------------------------------------------------------------------------------


def test_a_worker_executes_a_triggered_run(
    project: Path, client: Client, workers: Workers, side: Side
) -> None:
    client.deploy(f"{project}:tagged", name="tagged")
    run = client.trigger("tagged", {"tag": "t1"})
    assert run.state is StateType.SCHEDULED
    worker = workers.start("--name", "box-1", "--queue", "default", "--queue", "gpu")
    wait_for(lambda: state_of(client, run) is StateType.COMPLETED, "the run completed")
    assert side.counts() == Counter({"t1 a": 1, "t1 b": 1, "t1 c": 1})
    assert client.run_result(run.id) == ["a", "b", "c"]
    listed = subprocess.run(
        [sys.executable, "-m", "legato", "workers", "--json"],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=60,
    )
    assert listed.returncode == 0, listed.stderr
    alive = json.loads(listed.stdout)
    assert [(w["name"], w["queues"], w["pid"]) for w in alive] == [
        ("box-1", ["default", "gpu"], worker.pid)
    ]
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(30) == 0, workers.logs()
    assert client.workers() == []  # stopped: no longer alive
    assert [w.name for w in client.workers(include_gone=True)] == ["box-1"]


def test_four_workers_execute_each_of_many_runs_exactly_once(
    project: Path, client: Client, workers: Workers, side: Side
) -> None:
    client.deploy(f"{project}:one_step", name="one")
    runs = [client.trigger("one", {"tag": f"r{n}"}) for n in range(200)]
    # A lease far above any stall of a loaded 2-core machine: this test is about
    # claims, and a lapsed lease is a takeover (tested on its own below), not a double claim.
    for _ in range(4):
        workers.start("--concurrency", "2", "--lease-seconds", "15")
    wait_for(
        lambda: (
            len(side.lines()) >= len(runs)
            and all(state_of(client, r) is StateType.COMPLETED for r in runs)
        ),
        "every run completed",
        timeout=180,
    )
    assert side.counts() == Counter({f"r{n} only": 1 for n in range(200)})
    claimed_by = Counter(line for line in workers.logs().splitlines() if " claimed " in line)
    assert sum(claimed_by.values()) == len(runs)  # one claim per run, nothing claimed twice


def test_a_killed_workers_run_is_resumed_elsewhere_without_repeating_completed_tasks(
    project: Path, client: Client, workers: Workers, side: Side
) -> None:
    client.deploy(f"{project}:tagged", name="tagged")
    run = client.trigger("tagged", {"tag": "k", "slow_first_time": 60})
    doomed = workers.start()
    wait_for(lambda: "k b started" in side.lines(), "the run reached its slow task")
    doomed.send_signal(signal.SIGKILL)
    doomed.wait(10)
    workers.start()  # the survivor takes the run once its lease lapses
    wait_for(lambda: state_of(client, run) is StateType.COMPLETED, "the run completed elsewhere")
    counts = side.counts()
    assert counts["k a"] == 1  # completed before the crash: replayed, not run again
    assert counts["k b started"] == 1 and counts["k b"] == 1 and counts["k c"] == 1
    final = client.store.get_flow_run(run.id)
    assert final is not None and final.attempts == 2


def test_three_workers_and_a_one_second_schedule_make_exactly_one_run_per_slot(
    project: Path, client: Client, workers: Workers, side: Side
) -> None:
    client.deploy(f"{project}:tagged", name="every-second", schedules=[make_schedule(interval=1)])
    for _ in range(3):
        workers.start()
    wait_for(
        lambda: len(client.list_runs(deployment="every-second", states=[StateType.COMPLETED])) >= 4,
        "four slots ran",
    )
    client.pause_deployment("every-second")  # no new slots; queued ones finish
    wait_for(
        lambda: all(
            r.state is StateType.COMPLETED
            for r in client.list_runs(deployment="every-second", limit=1000)
            if r.scheduled_time is not None and r.scheduled_time.timestamp() <= time.time()
        ),
        "the due runs completed",
    )
    runs = client.list_runs(deployment="every-second", limit=1000)
    slots = sorted(r.scheduled_time.timestamp() for r in runs if r.scheduled_time is not None)
    assert len(slots) >= 4
    assert len(set(slots)) == len(slots)  # never two runs for one slot
    assert all(later - earlier == 1.0 for earlier, later in itertools.pairwise(slots))
    done = [r for r in runs if r.state is StateType.COMPLETED]
    for r in done:  # and each executed once
        assert side.counts()[f"{r.id} a"] == 1
    leaders = workers.logs().count("leading the scheduler")
    assert leaders >= 1


def test_sigterm_lets_a_running_flow_finish_within_the_grace_period(
    project: Path, client: Client, workers: Workers, side: Side
) -> None:
    client.deploy(f"{project}:tagged", name="tagged")
    run = client.trigger("tagged", {"tag": "g", "slow_first_time": 1.5})
    worker = workers.start("--grace-seconds", "30")
    wait_for(lambda: "g b started" in side.lines(), "the slow task started")
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(30) == 0, workers.logs()
    assert state_of(client, run) is StateType.COMPLETED
    assert side.counts()["g c"] == 1


def test_sigterm_hands_a_long_run_back_and_another_worker_resumes_it(
    project: Path, client: Client, workers: Workers, side: Side
) -> None:
    client.deploy(f"{project}:tagged", name="tagged")
    run = client.trigger("tagged", {"tag": "h", "slow_first_time": 60})
    worker = workers.start("--grace-seconds", "0.5")
    wait_for(lambda: "h b started" in side.lines(), "the slow task started")
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(30) == 0, workers.logs()
    handed = client.store.get_flow_run(run.id)
    assert handed is not None and handed.state is StateType.SCHEDULED
    assert handed.state_message is not None and "handed back" in handed.state_message
    workers.start()
    wait_for(lambda: state_of(client, run) is StateType.COMPLETED, "another worker finished it")
    assert side.counts()["h a"] == 1 and side.counts()["h c"] == 1


def test_a_run_whose_code_is_gone_fails_with_the_reason(
    project: Path, client: Client, workers: Workers
) -> None:
    client.deploy(f"{project}:tagged", name="tagged")
    run = client.trigger("tagged", {"tag": "x"})
    project.rename(project.with_name("moved.py"))
    workers.start()
    wait_for(lambda: state_of(client, run) is StateType.FAILED, "the run failed")
    failed = client.store.get_flow_run(run.id)
    assert failed is not None and failed.state_message is not None
    assert "could not start it" in failed.state_message and "flows.py" in failed.state_message


def test_a_run_queued_for_another_queue_is_left_alone(
    project: Path, client: Client, workers: Workers, side: Side
) -> None:
    client.deploy(f"{project}:tagged", name="gpu-only", work_queue="gpu")
    client.deploy(f"{project}:one_step", name="default-one")
    run = client.trigger("gpu-only", {"tag": "q"})
    workers.start("--queue", "default")
    # Claims take the oldest run first: once the default worker has claimed a
    # run queued after this one, it has passed this one over.
    later = client.trigger("default-one", {"tag": "d"})
    wait_for(lambda: state_of(client, later) is not StateType.SCHEDULED, "the later run claimed")
    assert state_of(client, run) is StateType.SCHEDULED
    assert "q a" not in side.lines()
    workers.start("--queue", "gpu")
    wait_for(lambda: state_of(client, run) is StateType.COMPLETED, "the gpu worker ran it")


def test_a_paused_run_frees_its_worker_and_resume_queues_it_again(
    project: Path, client: Client, workers: Workers, side: Side
) -> None:
    client.deploy(f"{project}:approval", name="approval")
    run = client.trigger("approval", {"tag": "p"})
    workers.start("--concurrency", "1")
    wait_for(lambda: state_of(client, run) is StateType.PAUSED, "the run paused")
    other = client.trigger("approval", {"tag": "p2"})  # the one slot is free again
    wait_for(lambda: state_of(client, other) is StateType.PAUSED, "the second run paused")

    def resume(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "legato", "resume", run.id, *args],
            capture_output=True,
            text=True,
            env=dict(os.environ),
            timeout=60,
        )

    bad = resume("--input", '{"ok": "maybe"}')
    assert bad.returncode == 2 and "ok" in bad.stderr
    assert state_of(client, run) is StateType.PAUSED
    good = resume("--input", '{"ok": true}')
    assert good.returncode == 0, good.stderr
    assert "queued again" in good.stdout
    wait_for(lambda: state_of(client, run) is StateType.COMPLETED, "a worker finished it")
    assert side.counts()["p a"] == 1 and side.counts()["p yes"] == 1
    assert client.run_result(run.id) == "yes"


def test_a_long_sleep_frees_the_worker_slot_and_the_run_wakes_up_later(
    project: Path,
    client: Client,
    workers: Workers,
    side: Side,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LEGATO_SLEEP_RELEASE_SECONDS", "1")
    client.deploy(f"{project}:napper", name="napper")
    sleeper = client.trigger("napper", {"tag": "s", "seconds": 3})
    workers.start("--concurrency", "1")
    wait_for(lambda: "s before" in side.lines(), "the sleeper reached its sleep")
    wait_for(lambda: state_of(client, sleeper) is StateType.SCHEDULED, "the sleeper let go")
    quick = client.trigger("napper", {"tag": "q", "seconds": 0})
    wait_for(lambda: state_of(client, quick) is StateType.COMPLETED, "the other run used the slot")
    assert state_of(client, sleeper) is StateType.SCHEDULED  # still asleep
    wait_for(lambda: state_of(client, sleeper) is StateType.COMPLETED, "the sleeper woke up")
    assert side.counts()["s before"] == 1 and side.counts()["s after"] == 1
    woke = client.store.get_flow_run(sleeper.id)
    assert woke is not None and woke.end_time is not None and woke.start_time is not None
    assert (woke.end_time - woke.start_time).total_seconds() >= 3


def test_a_deployment_concurrency_limit_holds_across_workers(
    project: Path, client: Client, workers: Workers, side: Side
) -> None:
    client.deploy(f"{project}:timed", name="single", concurrency_limit=1)
    runs = [client.trigger("single", {"tag": f"c{n}"}) for n in range(4)]
    workers.start("--concurrency", "2")
    workers.start("--concurrency", "2")
    wait_for(
        lambda: all(state_of(client, r) is StateType.COMPLETED for r in runs), "all runs completed"
    )
    spans = {}
    for line in side.lines():
        tag, kind, stamp = line.split()
        spans.setdefault(tag, {})[kind] = float(stamp)
    ordered = sorted((s["start"], s["end"]) for s in spans.values())
    assert len(ordered) == 4
    for (_, end), (next_start, _) in itertools.pairwise(ordered):
        assert next_start >= end  # never two at once


def test_a_run_started_late_says_so_in_its_logs(
    project: Path, client: Client, workers: Workers
) -> None:
    from datetime import timedelta

    from legato.client.views import flow_run_to_dict
    from legato.records import utcnow

    client.deploy(f"{project}:tagged", name="tagged")
    run = client.trigger("tagged", {"tag": "l"}, at=utcnow() - timedelta(seconds=90))
    assert flow_run_to_dict(client.get_run(run.id))["late_seconds"] >= 90
    workers.start()
    wait_for(lambda: state_of(client, run) is StateType.COMPLETED, "the late run completed")
    messages = [log.message for log in client.read_logs(run.id)]
    assert any(m.startswith("started late: 9") for m in messages), messages


def test_the_worker_kills_a_run_past_its_timeout_and_retries_it_elsewhere(
    project: Path,
    client: Client,
    workers: Workers,
    side: Side,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LEGATO_WORKER_TIMEOUT_GRACE_SECONDS", "0.5")
    client.deploy(f"{project}:freezes_once", name="freezes-once")
    client.deploy(f"{project}:always_freezes", name="always-freezes")
    retried = client.trigger("freezes-once", {"tag": "r"})
    failed = client.trigger("always-freezes", {"tag": "f"})
    workers.start("--lease-seconds", "60")
    wait_for(lambda: state_of(client, retried) is StateType.COMPLETED, "the retry completed")
    wait_for(lambda: state_of(client, failed) is StateType.FAILED, "the frozen run failed")
    counts = side.counts()
    assert counts["r freezing"] == 1 and counts["r done"] == 1, (side.lines(), workers.logs())
    final = client.store.get_flow_run(failed.id)
    assert final is not None and final.error is not None
    assert final.error.type == "FlowTimeoutError"
    assert "timeout_seconds=1" in (final.state_message or "")
    assert "killed its process" in (final.state_message or "")


def test_a_stuck_process_whose_lease_lapsed_loses_its_run_and_is_stopped(
    project: Path, client: Client, workers: Workers, side: Side
) -> None:
    client.deploy(f"{project}:freezes_once_untimed", name="freezes-once")
    run = client.trigger("freezes-once", {"tag": "s"})
    workers.start()  # lease 2 s: the frozen process stops heartbeating
    wait_for(lambda: state_of(client, run) is StateType.COMPLETED, "the run was taken over")
    counts = side.counts()
    assert counts["s freezing"] == 1 and counts["s done"] == 1, (side.lines(), workers.logs())
    wait_for(lambda: "taken over after its lease lapsed" in workers.logs(), "the old one stopped")


def test_a_global_limit_of_two_holds_under_four_workers(
    project: Path, client: Client, workers: Workers, side: Side
) -> None:
    client.set_limit("db", 2)
    client.deploy(f"{project}:limited", name="limited")
    runs = [client.trigger("limited", {"tag": f"g{n}"}) for n in range(4)]
    for _ in range(4):
        workers.start("--concurrency", "1")
    wait_for(
        lambda: all(state_of(client, r) is StateType.COMPLETED for r in runs), "all runs completed"
    )
    events = []
    for line in side.lines():
        _, kind, stamp = line.split()
        events.append((float(stamp), 1 if kind == "start" else -1))
    assert len(events) == 24  # 4 runs x 3 tasks, started and ended
    running = peak = 0
    for _, step in sorted(events):
        running += step
        peak = max(peak, running)
    assert peak == 2


def test_crashing_flows_among_many_good_ones_lose_only_their_own_run(
    project: Path, client: Client, workers: Workers, side: Side
) -> None:
    # Good runs reuse warm child processes; a flow that ends its process (os._exit,
    # a segfault, SIGKILL) crashes only its own run, as with a process per run, and
    # the worker keeps draining the queue with fresh children.
    client.deploy(f"{project}:maybe_crash", name="crashy")
    crashing = {5: "exit", 17: "segv", 29: "kill"}
    runs = {
        n: client.trigger("crashy", {"tag": f"r{n}", "how": crashing.get(n, "")}) for n in range(40)
    }
    worker = workers.start("--concurrency", "2", "--lease-seconds", "15")
    terminal = {StateType.COMPLETED, StateType.CRASHED, StateType.FAILED}
    wait_for(
        lambda: all(state_of(client, r) in terminal for r in runs.values()),
        "every run ended",
        timeout=120,
    )
    assert worker.poll() is None, workers.logs()  # the worker is still up
    ends = {n: client.store.get_flow_run(r.id) for n, r in runs.items()}
    messages = {
        "exit": "exited with code 3",
        "segv": f"killed by signal {int(signal.SIGSEGV)}",
        "kill": f"killed by signal {int(signal.SIGKILL)}",
    }
    for n, end in ends.items():
        assert end is not None
        if n in crashing:
            assert end.state is StateType.CRASHED, (n, end.state, end.state_message)
            assert messages[crashing[n]] in (end.state_message or ""), end.state_message
        else:
            assert end.state is StateType.COMPLETED, (n, end.state, end.state_message)
    lines = side.lines()
    assert Counter(line.split()[0] for line in lines) == Counter(f"r{n}" for n in range(40))
    good_pids = {line.split()[2] for line in lines if int(line.split()[0][1:]) not in crashing}
    # Far fewer processes than runs: children were reused (one per run before).
    assert len(good_pids) <= 10, good_pids


def test_a_warm_child_does_not_run_a_flow_file_edited_since_it_loaded_it(
    project: Path, client: Client, workers: Workers, side: Side
) -> None:
    client.deploy(f"{project}:versioned", name="versioned")
    workers.start("--concurrency", "1")
    first = client.trigger("versioned", {"tag": "a"})
    wait_for(lambda: state_of(client, first) is StateType.COMPLETED, "the first run completed")
    stat = project.stat()
    project.write_text(project.read_text().replace("VERSION", "EDITED"))
    os.utime(project, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000_000))
    second = client.trigger("versioned", {"tag": "b"})
    wait_for(lambda: state_of(client, second) is StateType.COMPLETED, "the second run completed")
    assert side.lines() == ["a VERSION", "b EDITED"]
    assert client.run_result(second.id) == "EDITED"


@pytest.mark.parametrize(("warm_runs", "processes"), [(None, 1), ("1", 4)])
def test_warm_runs_sets_how_many_runs_one_child_process_takes(
    project: Path,
    client: Client,
    workers: Workers,
    side: Side,
    warm_runs: str | None,
    processes: int,
) -> None:
    client.deploy(f"{project}:maybe_crash", name="warmth")
    runs = [client.trigger("warmth", {"tag": f"r{n}", "how": ""}) for n in range(4)]
    options = ["--concurrency", "1"] + (["--warm-runs", warm_runs] if warm_runs else [])
    workers.start(*options)
    wait_for(
        lambda: all(state_of(client, r) is StateType.COMPLETED for r in runs),
        "every run completed",
    )
    pids = {line.split()[2] for line in side.lines()}
    assert len(pids) == processes, side.lines()
