"""The crash matrix: kill representative flows at every task boundary, resume, compare.

Each flow of ``_crash_flows.py`` runs once uncrashed (with ``LEGATO_FAULTS=trace=...``)
to learn its boundaries (the final task records each process writes, in order)
and its result. Then, for every boundary and for ``kill-before`` and
``kill-after``, it runs again in a subprocess that SIGKILLs itself there, is
resumed without faults, and must end completed with the same result, having run
every task whose record was committed exactly once: only the call killed before
its record was committed (or, in concurrent flows, a call in flight) may have run
twice, and then under the same idempotency key.

On PostgreSQL a fixed random half of the cells runs (the other half runs on
SQLite anyway): the matrix stays within its time budget.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from _engine_support import legato_cmd, subprocess_env, wait_until

from legato.client import Client
from legato.records import FlowRun
from legato.states import StateType
from legato.store.base import Store

FLOWS = Path(__file__).with_name("_crash_flows.py")
EXIT_CODES = {StateType.COMPLETED: 0, StateType.PAUSED: 3}
SAMPLE_SEED = 10  # the cells sampled on PostgreSQL
PARALLEL_CELLS = 3  # cells are independent runs: overlap their processes


@dataclass(frozen=True)
class Phase:
    """One process of a scenario: ``legato ARGS`` (``{run}`` is the run id) and the
    state the run is left in when it ends."""

    args: tuple[str, ...]
    ends: StateType = StateType.COMPLETED


@dataclass(frozen=True)
class Scenario:
    phases: tuple[Phase, ...]
    # Tasks run one at a time: the records before a kill are exactly those traced
    # before it, and only the killed call may run twice.
    sequential: bool = True


def run_phase(flow: str) -> Phase:
    return Phase(("run", f"{FLOWS}:{flow}", "--json"))


SCENARIOS = {
    "sequential": Scenario((run_phase("sequential"),)),
    "map-with-retries": Scenario((run_phase("mapped"),), sequential=False),
    "subflows": Scenario((run_phase("parent"),)),
    "async-gather": Scenario((run_phase("gathered"),), sequential=False),
    "transaction-rollback": Scenario((run_phase("saga"),)),
    "pause": Scenario(
        (
            Phase(run_phase("approval").args, ends=StateType.PAUSED),
            Phase(("resume", "{run}", "--json", "--input", '{"ok": true}')),
        )
    ),
}


# --- what a process left behind -------------------------------------------------------


@dataclass(frozen=True)
class Effect:
    """A side-effect line: a task execution (``run``) or a compensation (``undo``)."""

    kind: str
    call_key: str
    idempotency_key: str

    @property
    def run_id(self) -> str:
        return self.idempotency_key.partition("/")[0]


def read_effects(path: Path) -> list[Effect]:
    effects = []
    for line in path.read_text().splitlines() if path.exists() else []:
        parts = line.split()
        kind, key, idem = ("run", *parts) if len(parts) == 2 else parts
        assert key == idem.partition("/")[2], f"side effect under a foreign key: {line}"
        effects.append(Effect(kind, key, idem))
    return effects


def read_trace(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def run_tree(store: Store, root_id: str) -> dict[str, str]:
    """Run id -> its path from the root run (``""``, ``child[0]/``, ...)."""
    paths = {root_id: ""}
    todo = [root_id]
    while todo:
        run_id = todo.pop()
        for child in store.list_flow_runs(parent_run_id=run_id, limit=1000):
            paths[child.id] = f"{paths[run_id]}{child.parent_call_key}/"
            todo.append(child.id)
    return paths


def root_of(store: Store, run_id: str) -> str:
    run = store.get_flow_run(run_id)
    while run is not None and run.parent_run_id is not None:
        run = store.get_flow_run(run.parent_run_id)
    assert run is not None, f"flow run {run_id} is not in the store"
    return run.id


def records(store: Store, paths: dict[str, str]) -> dict[str, StateType]:
    """Task record states by path (``child[0]/step[1]``) over a run tree."""
    return {
        paths[run_id] + tr.call_key: tr.state
        for run_id in paths
        for tr in store.list_task_runs(run_id)
    }


def effect_counts(effects: list[Effect], paths: dict[str, str]) -> Counter[tuple[str, str]]:
    return Counter((e.kind, paths[e.run_id] + e.call_key) for e in effects)


def check_effects(
    learned: Counter[tuple[str, str]],
    effects: list[Effect],
    paths: dict[str, str],
    may_repeat: set[str],
    cell: str,
) -> None:
    """Every side effect happened as often as in the uncrashed run, except the calls
    in ``may_repeat`` (in flight at the kill), which may have run once more, and the
    calls of a transaction that rolled back: a resume runs such a transaction again
    as a whole (its compensated tasks do not replay), so each extra run of such a
    call must come with an extra compensation (docs/architecture.md, Transactions)."""
    got = effect_counts(effects, paths)
    compensated = {
        path: got[("undo", path)] - learned[("undo", path)]
        for kind, path in got | learned
        if kind == "undo"
    }
    for kind, path in got | learned:
        extra = got[(kind, path)] - learned[(kind, path)]
        allowed = 1 if kind == "run" and path in may_repeat else 0
        again = compensated.get(path, 0)
        if again > 0 and kind in ("run", "undo"):
            allowed += again  # re-run with its transaction, and compensated again
        assert 0 <= extra <= allowed, (
            f"{cell}: {kind} {path} happened {got[(kind, path)]} times, "
            f"{learned[(kind, path)]} in the uncrashed run (may repeat: {sorted(may_repeat)})"
        )
    keys: dict[str, set[str]] = {}
    for e in effects:
        keys.setdefault(paths[e.run_id] + e.call_key, set()).add(e.idempotency_key)
    assert all(len(k) == 1 for k in keys.values()), f"{cell}: idempotency keys changed: {keys}"


# --- running cells ----------------------------------------------------------------------


@dataclass
class Learned:
    result: Any
    effects: Counter[tuple[str, str]]
    # The boundaries: (phase index, ordinal within that phase's process).
    boundaries: list[tuple[int, int]] = field(default_factory=list)
    records_before: list[int] = field(default_factory=list)  # final records before phase i


class Matrix:
    def __init__(self, home: Path, tmp: Path, store: Store) -> None:
        self.home, self.tmp, self.store = home, tmp, store

    def legato(
        self, cell: Path, args: tuple[str, ...], run_id: str | None, faults: str
    ) -> subprocess.CompletedProcess[str]:
        env = subprocess_env(
            self.home,
            SIDE_EFFECTS=str(cell / "effects.txt"),
            MARKERS=str(cell / "markers"),
            LEGATO_FAULTS=faults,
        )
        argv = [a.replace("{run}", run_id or "?") for a in args]
        return subprocess.run(
            legato_cmd(*argv), env=env, capture_output=True, text=True, timeout=120
        )

    def cell_dir(self, name: str) -> Path:
        cell = self.tmp / name
        (cell / "markers").mkdir(parents=True)
        return cell

    def finish(self, cell: Path, phase: Phase, run_id: str | None, name: str) -> str:
        done = self.legato(cell, phase.args, run_id, "")
        expected = EXIT_CODES[phase.ends]
        assert done.returncode == expected, f"{name}: {phase.args}: {done.stderr}"
        return run_id or str(json.loads(done.stdout)["id"])

    def learn(self, scenario: Scenario) -> Learned:
        cell = self.cell_dir("uncrashed")
        run_id: str | None = None
        boundaries: list[tuple[int, int]] = []
        before: list[int] = []
        for index, phase in enumerate(scenario.phases):
            trace = cell / f"trace-{index}.jsonl"
            before.append(len(boundaries))
            done = self.legato(cell, phase.args, run_id, f"trace={trace}")
            assert done.returncode == EXIT_CODES[phase.ends], done.stderr
            run_id = run_id or str(json.loads(done.stdout)["id"])
            boundaries += [(index, line["ordinal"]) for line in read_trace(trace)]
        assert run_id is not None
        paths = run_tree(self.store, run_id)
        return Learned(
            result=Client(self.store).run_result(run_id),
            effects=effect_counts(read_effects(cell / "effects.txt"), paths),
            boundaries=boundaries,
            records_before=before,
        )

    def crash_and_resume(
        self, scenario: Scenario, learned: Learned, phase_index: int, ordinal: int, mode: str
    ) -> None:
        name = f"phase{phase_index}-{mode}-{ordinal}"
        cell = self.cell_dir(name)
        run_id: str | None = None
        for phase in scenario.phases[:phase_index]:
            run_id = self.finish(cell, phase, run_id, name)
        phase = scenario.phases[phase_index]
        trace = cell / "trace.jsonl"
        killed = self.legato(cell, phase.args, run_id, f"kill-{mode}=#{ordinal};trace={trace}")
        assert killed.returncode == -signal.SIGKILL, f"{name}: not killed: {killed.stderr}"
        (target,) = [line for line in read_trace(trace) if line["ordinal"] == ordinal]
        run_id = run_id or root_of(self.store, target["flow_run_id"])
        paths = run_tree(self.store, run_id)
        at_kill = records(self.store, paths)
        target_path = paths[target["flow_run_id"]] + target["call_key"]
        target_state = StateType(target["state"])
        if mode == "after":
            assert at_kill.get(target_path) is target_state, f"{name}: {at_kill}"
        else:
            assert at_kill.get(target_path) is not target_state, f"{name}: {at_kill}"
        completed_at_kill = {p for p, s in at_kill.items() if s is StateType.COMPLETED}
        if scenario.sequential:
            committed = learned.records_before[phase_index] + ordinal - (mode == "before")
            final_at_kill = [p for p, s in at_kill.items() if s.is_final]
            assert len(final_at_kill) == committed, f"{name}: {at_kill}"
            may_repeat = {target_path} if mode == "before" else set()
        else:
            # Calls in flight at the kill: they ran (or started) but hold no completed record.
            ran = {paths[e.run_id] + e.call_key for e in read_effects(cell / "effects.txt")}
            may_repeat = (ran | set(at_kill)) - completed_at_kill

        # Resume without faults: the run gets where the killed phase would have left it.
        self.finish(cell, Phase(("resume", "{run}", "--json"), phase.ends), run_id, name)
        for later in scenario.phases[phase_index + 1 :]:
            self.finish(cell, later, run_id, name)

        final = self.store.get_flow_run(run_id)
        assert final is not None and final.state is StateType.COMPLETED, f"{name}: {final}"
        assert Client(self.store).run_result(run_id) == learned.result, name
        paths = run_tree(self.store, run_id)
        check_effects(learned.effects, read_effects(cell / "effects.txt"), paths, may_repeat, name)


def cells(boundaries: list[tuple[int, int]], backend: str) -> list[tuple[int, int, str]]:
    every = [(p, n, mode) for p, n in boundaries for mode in ("before", "after")]
    if backend != "postgres":
        return every
    return sorted(random.Random(SAMPLE_SEED).sample(every, k=(len(every) + 1) // 2))


def run_cells(check: Callable[[int, int, str], None], todo: list[tuple[int, int, str]]) -> None:
    """Run every cell (a few at a time); fail with the first line of each failed one."""
    with ThreadPoolExecutor(PARALLEL_CELLS) as pool:
        futures = [pool.submit(check, *cell) for cell in todo]
    failures = []
    for future in futures:
        exc = future.exception()
        if isinstance(exc, AssertionError):
            failures.append(str(exc).splitlines()[0])
        elif exc is not None:
            raise exc
    assert not failures, f"{len(failures)} of {len(todo)} cells failed:\n" + "\n".join(failures)


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_a_run_killed_at_any_boundary_resumes_to_the_uncrashed_result(
    scenario: str, backend: str, legato_home: Path, tmp_path: Path, default_store: Store
) -> None:
    matrix = Matrix(legato_home, tmp_path, default_store)
    plan = SCENARIOS[scenario]
    learned = matrix.learn(plan)
    assert len(learned.boundaries) >= 3, learned.boundaries
    run_cells(
        lambda phase_index, ordinal, mode: matrix.crash_and_resume(
            plan, learned, phase_index, ordinal, mode
        ),
        cells(learned.boundaries, backend),
    )


# --- (g) a retry wait under a worker ------------------------------------------------------


class Worker:
    """A `legato worker` process with its own environment and log."""

    def __init__(self, log: Path, queue: str, env: dict[str, str]) -> None:
        self.log = log
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "legato",
                    "worker",
                    "--lease-seconds",
                    "1",
                    "--queue",
                    queue,
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def started() -> Iterator[list[Worker]]:
    workers: list[Worker] = []
    yield workers
    for worker in workers:
        worker.stop()


def test_a_worker_run_killed_at_any_boundary_of_its_retry_resumes_to_the_same_result(
    backend: str,
    legato_home: Path,
    tmp_path: Path,
    default_store: Store,
    started: list[Worker],
) -> None:
    client = Client(default_store)

    def worker(cell: Path, faults: str) -> Worker:
        env = subprocess_env(
            legato_home,
            SIDE_EFFECTS=str(cell / "effects.txt"),
            MARKERS=str(cell / "markers"),
            LEGATO_FAULTS=faults,
            LEGATO_HEARTBEAT_SECONDS="0.2",
            LEGATO_LEASE_SECONDS="1",
        )
        log = cell / f"worker-{len(list(cell.glob('worker-*.log')))}.log"
        started.append(Worker(log, cell.name, env))
        return started[-1]

    def state_is(run: FlowRun, state: StateType) -> Callable[[], bool]:
        return lambda: client.store.get_flow_run(run.id).state is state  # type: ignore[union-attr]

    def run_uncrashed(cell: Path, run: FlowRun, faults: str = "") -> None:
        clean = worker(cell, faults)
        wait_until(state_is(run, StateType.COMPLETED), 60, what=f"{run.id} to complete")
        clean.stop()

    def trigger(cell: Path) -> FlowRun:
        # A queue per cell, so cells run side by side without taking each other's runs.
        (cell / "markers").mkdir(parents=True)
        client.deploy(f"{FLOWS}:retrying", name=cell.name, work_queue=cell.name)
        return client.trigger(cell.name)

    learn = tmp_path / "uncrashed"
    first = trigger(learn)
    run_uncrashed(learn, first, f"trace={learn / 'trace.jsonl'}")
    result = client.run_result(first.id)
    assert result == ["a", "b", "c"]
    learned = effect_counts(read_effects(learn / "effects.txt"), {first.id: ""})
    keys = list(dict.fromkeys(line["call_key"] for line in read_trace(learn / "trace.jsonl")))
    assert keys == ["step[0]", "step[1]", "step[2]"]
    # The first attempt failed and waited before the second: one retry, and one only.
    final = client.store.get_flow_run(first.id)
    assert final is not None and final.attempts == 2, final

    def crash_and_resume(_: int, n: int, mode: str) -> None:
        key = keys[n]
        name = f"{mode}-{n}"
        cell = tmp_path / name
        run = trigger(cell)
        doomed = worker(cell, f"kill-{mode}=retrying:{key}")
        wait_until(state_is(run, StateType.CRASHED), 60, what=f"{name}: the run to crash")
        wait_until(lambda: "killed by signal 9" in doomed.text(), 10, what=f"{name}: a SIGKILL")
        doomed.stop()
        at_kill = records(client.store, {run.id: ""})
        committed = {k for k, s in at_kill.items() if s is StateType.COMPLETED}
        assert committed == set(keys[: n + (mode == "after")]), f"{name}: {at_kill}"

        client.requeue_run(run.id)  # what `legato resume` does for a worker's run
        run_uncrashed(cell, run)
        assert client.run_result(run.id) == result, name
        may_repeat = {key} if mode == "before" else set()
        check_effects(learned, read_effects(cell / "effects.txt"), {run.id: ""}, may_repeat, name)

    run_cells(crash_and_resume, cells([(0, n) for n in range(len(keys))], backend))
