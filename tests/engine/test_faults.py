"""The fault-injection hook (`legato.engine.faults`, ``LEGATO_FAULTS``) on its own.

The crash matrix (test_crash_matrix.py) builds on it; here each fault is shown to
do exactly what the docs say: kills land at the chosen record, before or after
its commit; store failures are counted; a frozen heartbeat lets the lease lapse;
a typo is a clear error.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from _engine_support import legato_cmd, subprocess_env, wait_until

from legato import flow, task
from legato.client import Client
from legato.engine import faults
from legato.engine.faults import FaultPlan
from legato.errors import ConfigurationError, StoreUnavailableError
from legato.records import RunOwner, utcnow
from legato.states import StateType
from legato.store.base import Store

FLOWS = Path(__file__).with_name("_crash_flows.py")


@pytest.fixture
def cell(tmp_path: Path) -> Path:
    """Where the support flows write their side effects and markers."""
    (tmp_path / "markers").mkdir()
    return tmp_path


def legato(
    home: Path, cell: Path, *args: str, faults_spec: str = ""
) -> subprocess.CompletedProcess[str]:
    env = subprocess_env(
        home,
        SIDE_EFFECTS=str(cell / "effects.txt"),
        MARKERS=str(cell / "markers"),
        LEGATO_FAULTS=faults_spec,
    )
    return subprocess.run(legato_cmd(*args), env=env, capture_output=True, text=True, timeout=60)


def effects(cell: Path) -> Counter[str]:
    path = cell / "effects.txt"
    return Counter(path.read_text().splitlines() if path.exists() else [])


def only_run(store: Store) -> str:
    (run,) = store.list_flow_runs(limit=5)
    return run.id


def recorded(store: Store, run_id: str) -> dict[str, StateType]:
    return {tr.call_key: tr.state for tr in store.list_task_runs(run_id)}


# --- the plan -------------------------------------------------------------------------


def test_a_plan_parses_every_item() -> None:
    plan = FaultPlan.parse(
        " kill-before=fetch[2] ; kill-after=etl:outer[0]/inner[1];kill-after=#3;"
        "store-fail=2@#4;freeze-heartbeat;trace=/tmp/t.jsonl;"
    )
    assert plan == FaultPlan(
        kill_before=frozenset({"fetch[2]"}),
        kill_after=frozenset({"etl:outer[0]/inner[1]", "#3"}),
        store_failures=2,
        store_fail_at="#4",
        freeze_heartbeat=True,
        trace="/tmp/t.jsonl",
    )
    assert FaultPlan.parse("") == FaultPlan()
    assert FaultPlan.parse("store-fail=3") == FaultPlan(store_failures=3)


@pytest.mark.parametrize(
    "spec",
    [
        "bogus",
        "kill-before",
        "kill-before=",
        "kill-after=#0",
        "kill-after=#x",
        "store-fail=",
        "store-fail=-1",
        "store-fail=two",
        "store-fail=2@",
        "freeze-heartbeat=1",
        "trace=",
        "kill_before=a[0]",
    ],
)
def test_a_typo_is_a_configuration_error_naming_the_item_and_the_syntax(spec: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        FaultPlan.parse(f"freeze-heartbeat;{spec}")
    message = str(caught.value)
    assert f"LEGATO_FAULTS item {spec!r} is not understood" in message
    assert "kill-before=KEY" in message and "store-fail=N" in message


def test_a_typo_in_the_environment_stops_a_run_with_one_line_and_exit_2(
    legato_home: Path, cell: Path, default_store: Store
) -> None:
    done = legato(legato_home, cell, "run", f"{FLOWS}:sequential", faults_spec="kill-befor=#1")
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        "error: LEGATO_FAULTS item 'kill-befor=#1' is not understood; use kill-before=KEY, "
        "kill-after=KEY (KEY a call key, flow:KEY or #N), store-fail=N, store-fail=N@KEY, "
        "freeze-heartbeat or trace=PATH, separated by ';'"
    ]
    assert effects(cell) == Counter()  # nothing ran
    # Commands that run no flow are not affected.
    listed = legato(legato_home, cell, "runs", "--json", faults_spec="kill-befor=#1")
    assert listed.returncode == 0, listed.stderr


# --- inject(): the Python side --------------------------------------------------------


@task
def double(x: int) -> int:
    return 2 * x


@flow
def doubled(x: int) -> int:
    return double(x)


def test_inject_applies_a_plan_only_inside_its_block(default_store: Store) -> None:
    assert faults.ACTIVE is None  # no LEGATO_FAULTS in the tests' environment
    with faults.inject("store-fail=1") as plan:
        assert plan == FaultPlan(store_failures=1)
        with pytest.raises(StoreUnavailableError, match="store-fail failed its call"):
            doubled(1)
        assert doubled(2) == 4  # the one failure is spent
        with faults.inject(FaultPlan(store_failures=1)), pytest.raises(StoreUnavailableError):
            doubled(3)
        assert doubled(4) == 8  # the outer plan is back, its failure still spent
    assert faults.ACTIVE is None
    assert doubled(5) == 10
    with pytest.raises(RuntimeError, match="boom"), faults.inject("store-fail=1"):
        raise RuntimeError("boom")
    assert faults.ACTIVE is None  # restored on an exception too
    with pytest.raises(ConfigurationError), faults.inject("nonsense"):
        pass
    assert faults.ACTIVE is None


def test_store_fail_n_fails_exactly_the_next_n_store_calls(default_store: Store) -> None:
    with faults.inject("store-fail=0"):
        assert faults.wrap_store(default_store) is default_store  # nothing to fail
    with faults.inject("store-fail=3"):
        store = faults.wrap_store(default_store)
        assert faults.wrap_store(store) is store  # never wrapped twice
        outcomes = []
        for _ in range(5):
            try:
                store.list_flow_runs(limit=1)
                outcomes.append("ok")
            except StoreUnavailableError:
                outcomes.append("failed")
        assert outcomes == ["failed", "failed", "failed", "ok", "ok"]
    assert faults.wrap_store(default_store) is default_store


def test_a_store_outage_at_a_record_crashes_the_run_and_resume_completes_it(
    legato_home: Path, cell: Path, default_store: Store
) -> None:
    done = legato(
        legato_home, cell, "run", f"{FLOWS}:sequential", faults_spec="store-fail=1@step[1]"
    )
    assert done.returncode == 1, done.stderr
    (line,) = done.stderr.strip().splitlines()[-1:]
    assert line.startswith("error: the store (fault injection) could not be reached")
    assert "store-fail failed its call record_task_run" in line
    run_id = only_run(default_store)
    assert Client(default_store).get_run(run_id).state is StateType.CRASHED
    assert recorded(default_store, run_id) == {"step[0]": StateType.COMPLETED}

    resumed = legato(legato_home, cell, "resume", run_id, "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["result"] == 0 + 1 + 2
    # step[1] ran before its record failed, and once more on resume, under one key.
    assert effects(cell) == Counter(
        {
            f"step[0] {run_id}/step[0]": 1,
            f"step[1] {run_id}/step[1]": 2,
            f"step[2] {run_id}/step[2]": 1,
        }
    )


# --- kills --------------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["step[1]", "sequential:step[1]", "#2"])
@pytest.mark.parametrize("mode", ["before", "after"])
def test_a_kill_lands_at_the_chosen_record_before_or_after_its_commit(
    legato_home: Path, cell: Path, default_store: Store, target: str, mode: str
) -> None:
    trace = cell / "trace.jsonl"
    done = legato(
        legato_home,
        cell,
        "run",
        f"{FLOWS}:sequential",
        faults_spec=f"kill-{mode}={target};trace={trace}",
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    run_id = only_run(default_store)
    expected = {"step[0]": StateType.COMPLETED}
    if mode == "after":
        expected["step[1]"] = StateType.COMPLETED
    assert recorded(default_store, run_id) == expected
    # step[1] ran either way; step[2] never started.
    assert effects(cell) == Counter(
        {f"step[0] {run_id}/step[0]": 1, f"step[1] {run_id}/step[1]": 1}
    )
    lines = [json.loads(line) for line in trace.read_text().splitlines()]
    assert [(t["ordinal"], t["call_key"], t["state"], t["flow"]) for t in lines] == [
        (1, "step[0]", "completed", "sequential"),
        (2, "step[1]", "completed", "sequential"),
    ]
    assert {t["flow_run_id"] for t in lines} == {run_id}


def test_a_kill_aimed_at_another_flow_or_a_later_record_does_not_fire(
    legato_home: Path, cell: Path, default_store: Store
) -> None:
    done = legato(
        legato_home,
        cell,
        "run",
        f"{FLOWS}:sequential",
        "--json",
        faults_spec="kill-before=other:step[1];kill-after=#4;kill-before=step[9]",
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["result"] == 3


# --- a frozen heartbeat -----------------------------------------------------------------------


@pytest.fixture
def children() -> Iterator[list[subprocess.Popen[str]]]:
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def test_a_frozen_heartbeat_lets_another_claimer_take_the_run_when_its_lease_lapses(
    legato_home: Path, cell: Path, default_store: Store, children: list[subprocess.Popen[str]]
) -> None:
    client = Client(default_store)
    client.deploy(f"{FLOWS}:held", name="held", work_queue="frozen")
    run = client.trigger("held")
    first = RunOwner(token=uuid.uuid4().hex, host="here", pid=os.getpid())
    claimed = default_store.claim_flow_run(["frozen"], first, now=utcnow(), lease_seconds=1)
    assert claimed is not None and claimed.id == run.id
    env = subprocess_env(
        legato_home,
        SIDE_EFFECTS=str(cell / "effects.txt"),
        MARKERS=str(cell / "markers"),
        LEGATO_FAULTS="freeze-heartbeat",
        LEGATO_HEARTBEAT_SECONDS="0.05",
        LEGATO_CLAIM_TOKEN=first.token,
    )
    child = subprocess.Popen(
        [sys.executable, "-m", "legato.worker.child", run.id],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    children.append(child)
    wait_until(lambda: sum(effects(cell).values()) == 1, what="hold() to start")
    started = default_store.get_flow_run(run.id)
    assert started is not None and started.state is StateType.RUNNING
    assert started.owner is not None and started.owner.pid == child.pid

    # Its heartbeat (every 0.05 s, were it not frozen) never comes: the lease lapses.
    second = RunOwner(token=uuid.uuid4().hex, host="there", pid=1)
    taken: list[object] = []

    def take() -> bool:
        got = default_store.claim_flow_run(["frozen"], second, now=utcnow(), lease_seconds=1)
        taken.append(got)
        return got is not None

    wait_until(take, timeout=20, interval=0.05, what="the lease to lapse")
    assert all(t is None for t in taken[:-1])
    after = default_store.get_flow_run(run.id)
    assert after is not None and after.owner is not None and after.owner.token == second.token
    (cell / "markers" / "release").touch()
    child.wait(30)  # the frozen process finds its run taken over and stops
    final = default_store.get_flow_run(run.id)
    assert final is not None and final.state is StateType.PENDING  # the new claimer's
    assert final.owner is not None and final.owner.token == second.token
